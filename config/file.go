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

	Providers []ProviderFile `hcl:"provider,block"`

	Leaf *LeafFile `hcl:"leaf,block"` // an edge's embedded leaf server (config/cluster.go)

	MetricsListen *string `hcl:"metrics_listen,optional"` // host:port of /metrics, /healthz, /readyz; "" or unset = off

	// config/security.go
	LogFormat             *string      `hcl:"log_format,optional"`              // "text" (default) or "json"
	EncryptionKeyFile     *string      `hcl:"encryption_key_file,optional"`     // 16, 24 or 32 raw bytes: AES key of the WAL and settle index
	EncryptionKeyRotation *string      `hcl:"encryption_key_rotation,optional"` // how often Badger makes a new data key (default "240h")
	Alerts                *AlertsFile  `hcl:"alerts,block"`                     // alert manager and webhooks (config/ops.go)
	SLAs                  []SLAFile    `hcl:"sla,block"`                        // per-partner service levels
	Anomaly               *AnomalyFile `hcl:"anomaly,block"`                    // anomaly detection
}

// ProviderFile is one provider: its dialect and credentials. The hub role
// turns the NATS credentials into a user allowed to publish only on
// <prefix>.in.<name>; the ingest role uses the dialect and the HTTP token.
type ProviderFile struct {
	Name         string  `hcl:"name,label"`
	Dialect      *string `hcl:"dialect,optional"`        // canonical (default), minor_units, csv
	NATSUser     *string `hcl:"nats_user,optional"`      // default: the provider name
	NATSPassword *string `hcl:"nats_password,optional"`  // plain or bcrypt ("$2a$...")
	NATSNkey     *string `hcl:"nats_nkey,optional"`      // public user nkey ("U..."), instead of a password
	HTTPToken    *string `hcl:"http_token,optional"`     // bearer token for the HTTP endpoint
	NATSCertUser *string `hcl:"nats_cert_user,optional"` // client certificate identity (e-mail SAN, DNS SAN or subject DN) under verify_and_map
}

// HubUserFile is a tally node (edge, settle) allowed to connect to the
// embedded hub with full permissions.
type HubUserFile struct {
	Name     string `hcl:"name,label"`
	Password string `hcl:"password"`
}

// HubFile configures the embedded nats-server (role hub).
type HubFile struct {
	Listen       *string `hcl:"listen,optional"`        // host:port for clients, e.g. "127.0.0.1:4222"; port 0 picks a free one
	SyncInterval *string `hcl:"sync_interval,optional"` // "always" (fsync every write) or a duration such as "2m"
	MaxStore     *string `hcl:"max_store,optional"`     // JetStream file store limit, e.g. "10GiB"

	NodeUsers []HubUserFile `hcl:"node_user,block"`

	Cluster   *ClusterFile   `hcl:"cluster,block"`   // three hubs, one NATS cluster (config/cluster.go)
	LeafNodes *LeafNodesFile `hcl:"leafnodes,block"` // edges connect here as leaf nodes

	TLS           *ServerTLSFile `hcl:"tls,block"`               // TLS on the client port (config/security.go)
	MonitorListen *string        `hcl:"monitor_listen,optional"` // nats-server monitoring host:port; "" or unset = off
}

// NATSFile says how to reach NATS when this node runs no hub.
type NATSFile struct {
	URL      *string  `hcl:"url,optional"`
	User     *string  `hcl:"user,optional"`
	Password *string  `hcl:"password,optional"`
	Creds    *string  `hcl:"creds,optional"`
	TLS      *TLSFile `hcl:"tls,block"` // ca_file verifies the server; cert_file and key_file are a client certificate
}

// StreamsFile sizes TALLY_TX and TALLY_LEDGER (created by the hub, or by any
// node when create = true).
type StreamsFile struct {
	Create          *bool   `hcl:"create,optional"`
	Partitions      *int    `hcl:"partitions,optional"`
	Replicas        *int    `hcl:"replicas,optional"`
	DuplicateWindow *string `hcl:"duplicate_window,optional"`
	TxMaxAge        *string `hcl:"tx_max_age,optional"`
	Compression     *string `hcl:"compression,optional"` // "s2" (default) or "none"
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
	QueueMax       *int    `hcl:"queue_max,optional"`
	PendingBytes   *string `hcl:"pending_bytes,optional"`
	GroupWait      *string `hcl:"group_wait,optional"`
	BudgetBytes    *string `hcl:"budget_bytes,optional"`
	ForwardBatch   *int    `hcl:"forward_batch,optional"`
	ForwardWindow  *int    `hcl:"forward_window,optional"`
	PublishTimeout *string `hcl:"publish_timeout,optional"`
	DLQMax         *int    `hcl:"dlq_max,optional"`

	HTTPListen         *string `hcl:"http_listen,optional"`
	RequestBytes       *string `hcl:"request_bytes,optional"`   // largest request, NATS or HTTP
	HTTPBodyBytes      *string `hcl:"http_body_bytes,optional"` // old name of request_bytes
	Retention          *string `hcl:"retention,optional"`
	GCInterval         *string `hcl:"gc_interval,optional"`
	GCBatch            *int    `hcl:"gc_batch,optional"`
	RetentionHighWater *string `hcl:"retention_high_water,optional"`
	ReplayMax          *int    `hcl:"replay_max,optional"`
	ReplayIDsMax       *int    `hcl:"replay_ids_max,optional"`

	HTTPTLS *ServerTLSFile `hcl:"http_tls,block"` // HTTPS on http_listen

	// The WAL's Badger memory (internal/badgermem).
	WALMemtableBytes   *string `hcl:"wal_memtable_bytes,optional"`
	WALMemtables       *int    `hcl:"wal_memtables,optional"`
	WALBlockCacheBytes *string `hcl:"wal_block_cache_bytes,optional"`
	WALIndexCacheBytes *string `hcl:"wal_index_cache_bytes,optional"`
	WALCompression     *string `hcl:"wal_compression,optional"` // "s2" (default) or "none"
}

// SettleFile configures the settle role.
type SettleFile struct {
	Rules             *string `hcl:"rules,optional"`
	Partitions        []int   `hcl:"partitions,optional"`
	SegmentMaxEntries *int    `hcl:"segment_max_entries,optional"`
	SegmentMaxAge     *string `hcl:"segment_max_age,optional"`
	FetchBatch        *int    `hcl:"fetch_batch,optional"`
	OrphanTimeout     *string `hcl:"orphan_timeout,optional"`
	AckWait           *string `hcl:"ack_wait,optional"`
	Origin            *string `hcl:"origin,optional"`
	SigningKey        *string `hcl:"signing_key,optional"`
	// Audit API (issue 5, docs/audit.md).
	AuditListen     *string `hcl:"audit_listen,optional"`
	AuditMaxEntries *int    `hcl:"audit_max_entries,optional"`
	// Partition leases (issue 11 item 3, docs/settle.md "Leases").
	Leases   *bool   `hcl:"leases,optional"`
	LeaseTTL *string `hcl:"lease_ttl,optional"`
	// Commit pipeline (issue 14 item 2, docs/settle.md "Commit pipeline").
	Pipeline *bool `hcl:"pipeline,optional"`

	AuditTLS    *ServerTLSFile   `hcl:"audit_tls,block"`   // HTTPS on audit_listen
	AuditTokens []AuditTokenFile `hcl:"audit_token,block"` // bearer tokens with scopes
	// Console (issue 13, docs/console.md).
	ConsoleListen    *string        `hcl:"console_listen,optional"`
	ConsoleUsers     *string        `hcl:"console_users,optional"`
	ConsoleMaxUpload *string        `hcl:"console_max_upload,optional"` // size of a report upload
	ConsoleTLS       *ServerTLSFile `hcl:"console_tls,block"`           // HTTPS on console_listen
	// An adjustment larger than this needs two approvers (decimal string).
	ConsoleDualApprovalAbove *string `hcl:"console_dual_approval_above,optional"`
	ConsoleReplayWait        *string `hcl:"console_replay_wait,optional"`
	ConsoleQueueExceptions   *int    `hcl:"console_queue_exceptions,optional"`
	ConsoleQueueAnomalies    *int    `hcl:"console_queue_anomalies,optional"`
	ConsoleQueueBreaks       *int    `hcl:"console_queue_breaks,optional"`
	// The operator log's forwarder (settle/oplog).
	OplogAckWait        *string `hcl:"oplog_ack_wait,optional"`
	OplogPublishTimeout *string `hcl:"oplog_publish_timeout,optional"`

	// The index's Badger memory (internal/badgermem).
	IndexMemtableBytes   *string `hcl:"index_memtable_bytes,optional"`
	IndexMemtables       *int    `hcl:"index_memtables,optional"`
	IndexBlockCacheBytes *string `hcl:"index_block_cache_bytes,optional"`
	IndexIndexCacheBytes *string `hcl:"index_index_cache_bytes,optional"`
}
