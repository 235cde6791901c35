package config

// File is the HCL shape of a node config. Pointers distinguish "unset" (take the
// default) from a zero the operator wrote. See config/examples/ and docs/config.md.
type File struct {
	NodeID   *string  `hcl:"node_id,optional"`
	DataDir  *string  `hcl:"data_dir,optional"`
	Prefix   *string  `hcl:"prefix,optional"`
	LogLevel *string  `hcl:"log_level,optional"`
	Roles    []string `hcl:"roles,optional"`

	Hub     *HubFile     `hcl:"hub,block"`
	NATS    *NATSFile    `hcl:"nats,block"`
	Streams *StreamsFile `hcl:"streams,block"`
	Ingest  *IngestFile  `hcl:"ingest,block"`
	Settle  *SettleFile  `hcl:"settle,block"`
}

// HubFile configures the embedded nats-server (role hub).
type HubFile struct {
	Listen       *string `hcl:"listen,optional"`        // host:port for clients, e.g. "127.0.0.1:4222"; port 0 picks a free one
	SyncInterval *string `hcl:"sync_interval,optional"` // "always" (fsync every write) or a duration such as "2m"
	MaxStore     *string `hcl:"max_store,optional"`     // JetStream file store limit, e.g. "10GiB"
}

// NATSFile says how to reach NATS when this node runs no hub.
type NATSFile struct {
	URL      *string `hcl:"url,optional"`
	User     *string `hcl:"user,optional"`
	Password *string `hcl:"password,optional"`
	Creds    *string `hcl:"creds,optional"`
}

// StreamsFile sizes TALLY_TX and TALLY_LEDGER (created by the hub, or by any
// node when create = true).
type StreamsFile struct {
	Create          *bool   `hcl:"create,optional"`
	Partitions      *int    `hcl:"partitions,optional"`
	Replicas        *int    `hcl:"replicas,optional"`
	DuplicateWindow *string `hcl:"duplicate_window,optional"`
	TxMaxAge        *string `hcl:"tx_max_age,optional"`
}

// IngestFile configures the ingest role.
type IngestFile struct {
	PayloadBytes   *int    `hcl:"payload_bytes,optional"`
	BatchMax       *int    `hcl:"batch_max,optional"`
	IDLen          *int    `hcl:"id_len,optional"`
	FieldLen       *int    `hcl:"field_len,optional"`
	MetaKeys       *int    `hcl:"meta_keys,optional"`
	MetaBytes      *int    `hcl:"meta_bytes,optional"`
	AmountMax      *string `hcl:"amount_max,optional"`
	GroupMax       *int    `hcl:"group_max,optional"`
	GroupWait      *string `hcl:"group_wait,optional"`
	BudgetBytes    *string `hcl:"budget_bytes,optional"`
	ForwardBatch   *int    `hcl:"forward_batch,optional"`
	ForwardWindow  *int    `hcl:"forward_window,optional"`
	PublishTimeout *string `hcl:"publish_timeout,optional"`
	DLQMax         *int    `hcl:"dlq_max,optional"`
}

// SettleFile configures the settle role.
type SettleFile struct {
	Rules             *string `hcl:"rules,optional"`
	Partitions        []int   `hcl:"partitions,optional"`
	SegmentMaxEntries *int    `hcl:"segment_max_entries,optional"`
	SegmentMaxAge     *string `hcl:"segment_max_age,optional"`
	FetchBatch        *int    `hcl:"fetch_batch,optional"`
	OrphanTimeout     *string `hcl:"orphan_timeout,optional"`
	Origin            *string `hcl:"origin,optional"`
	SigningKey        *string `hcl:"signing_key,optional"`
	// Audit API (issue 5, docs/audit.md).
	AuditListen     *string `hcl:"audit_listen,optional"`
	AuditMaxEntries *int    `hcl:"audit_max_entries,optional"`
}
