//go:build !unix

package alerts

import "errors"

// DiskFree is not implemented on this platform: disk_low never fires.
func DiskFree(string) (free, total uint64, err error) {
	return 0, 0, errors.New("statfs not supported on this platform")
}
