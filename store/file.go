package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic makes path hold exactly data, durably, or leaves it as it
// was: it writes a temporary file in the same directory, fsyncs it, renames
// it over path and fsyncs the directory. The file is readable by everyone
// (0644); use it for public material such as rule sets and verifier keys.
func WriteFileAtomic(path string, data []byte) error {
	_, err := writeFileAtomic(path, data, 0o644)
	return err
}

// writeFileAtomic is WriteFileAtomic with a mode. renamed reports whether
// path was replaced even though err != nil (the directory fsync failed).
func writeFileAtomic(path string, data []byte, perm os.FileMode) (renamed bool, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil && !renamed {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err == nil {
		if err = f.Chmod(perm); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		return true, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

// syncDir fsyncs a directory so that renames and creations in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// ReadFileMax reads a whole file that must not exceed max bytes; a larger
// file is an error wrapping ErrMalformed, read without allocating its size.
func ReadFileMax(path string, max int64) ([]byte, error) { return readFileMax(path, max) }

func readFileMax(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, limit is %d: %w", path, st.Size(), max, ErrMalformed)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
