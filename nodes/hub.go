package nodes

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tally-mesh/tally/config"
)

// startHub runs the embedded nats-server with JetStream in the data directory.
func startHub(c config.Config) (*server.Server, error) {
	port := c.Hub.Port
	if port == 0 {
		port = -1 // nats-server: -1 picks a free port (0 would mean 4222)
	}
	o := &server.Options{
		ServerName:         c.NodeID,
		Host:               c.Hub.Host,
		Port:               port,
		JetStream:          true,
		StoreDir:           c.HubDir(),
		JetStreamMaxStore:  c.Hub.MaxStore,
		JetStreamMaxMemory: 64 << 20,
		SyncAlways:         c.Hub.SyncAlways, // fsync every write: a PubAck then survives power loss
		SyncInterval:       c.Hub.SyncInterval,
		NoSigs:             true, // tally handles signals: first drains, second aborts
		NoLog:              true,
		MaxPayload:         8 << 20, // forwarded batches pack many records
	}
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("hub: not ready after 15s (is %s:%d in use?)", c.Hub.Host, c.Hub.Port)
	}
	return s, nil
}
