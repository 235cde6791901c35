package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestClusterExamplesLoad loads every config of examples/cluster/ and checks
// the cluster, leaf and stream settings they are there to show.
func TestClusterExamplesLoad(t *testing.T) {
	all, _ := filepath.Glob("examples/cluster/*.hcl")
	want := []string{"edge-eu.hcl", "edge-us.hcl", "hub-1.hcl", "hub-2.hcl", "hub-3.hcl", "settle-1.hcl", "settle-2.hcl"}
	var got []string
	for _, f := range all {
		got = append(got, filepath.Base(f))
	}
	if !slices.Equal(got, want) {
		t.Errorf("examples/cluster has %v, want %v: a new example needs a case here", got, want)
	}
	routes := map[string]bool{}
	for i, f := range []string{"hub-1.hcl", "hub-2.hcl", "hub-3.hcl"} {
		c, err := Load(filepath.Join("examples/cluster", f))
		if err != nil {
			t.Fatalf("Load(%s) = %v", f, err)
		}
		cl := c.Hub.Cluster
		if cl == nil || cl.Name != "tally" || len(cl.Routes) != 3 || cl.User == "" || c.Streams.Replicas != 3 {
			t.Errorf("%s: cluster %+v, replicas %d", f, cl, c.Streams.Replicas)
			continue
		}
		if cl.Port != 6222+i || c.Hub.Port != 4222+i || c.Hub.LeafNodes == nil || c.Hub.LeafNodes.Port != 7422+i || len(c.Hub.LeafNodes.Users) != 2 {
			t.Errorf("%s: ports %d/%d, leafnodes %+v", f, c.Hub.Port, cl.Port, c.Hub.LeafNodes)
		}
		for _, r := range cl.Routes {
			routes[r] = true
		}
	}
	if len(routes) != 3 {
		t.Errorf("the hubs list different routes: %v", routes)
	}
	for _, f := range []string{"edge-eu.hcl", "edge-us.hcl"} {
		c, err := Load(filepath.Join("examples/cluster", f))
		if err != nil {
			t.Fatalf("Load(%s) = %v", f, err)
		}
		if c.Leaf == nil || len(c.Leaf.Hubs) != 3 || c.Leaf.User == "" || c.Has(RoleHub) || len(c.Providers) != 1 {
			t.Errorf("%s: leaf %+v, roles %v", f, c.Leaf, c.Roles)
		}
	}
	c, err := Load("examples/cluster/settle-1.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.Split(c.NATS.URL, ",")) != 3 || c.Streams.Partitions != 4 {
		t.Errorf("settle-1: nats.url %q, partitions %d", c.NATS.URL, c.Streams.Partitions)
	}
}

// TestClusterConfigProblems: every bad cluster, leafnodes and leaf setting is
// reported with its key.
func TestClusterConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		name, src, key string
	}{
		{"cluster without hub", `roles = ["settle"]
settle { rules = "r.hcl" }
hub {
  cluster {
    listen = "127.0.0.1:6222"
    routes = ["nats-route://127.0.0.1:6223"]
  }
}`, "hub.cluster"},
		{"route with credentials in the URL", `roles = ["hub"]
hub {
  cluster {
    listen = "127.0.0.1:6222"
    routes = ["nats-route://u:p@127.0.0.1:6223"]
  }
}`, "hub.cluster.routes"},
		{"bad cluster name", `roles = ["hub"]
hub {
  cluster {
    name   = "a b"
    listen = "127.0.0.1:6222"
    routes = ["nats-route://127.0.0.1:6223"]
  }
}`, "hub.cluster.name"},
		{"user without password", `roles = ["hub"]
hub {
  cluster {
    listen = "127.0.0.1:6222"
    routes = ["nats-route://127.0.0.1:6223"]
    user   = "route"
  }
}`, "hub.cluster.password"},
		{"bad cluster listen", `roles = ["hub"]
hub {
  cluster {
    listen = "nowhere"
    routes = ["nats-route://127.0.0.1:6223"]
  }
}`, "hub.cluster.listen"},
		{"replicas above the hub count", `roles = ["hub"]
streams { replicas = 5 }
hub {
  cluster {
    listen = "127.0.0.1:6222"
    routes = ["nats-route://127.0.0.1:6223", "nats-route://127.0.0.1:6224"]
  }
}`, "streams.replicas"},
		{"R3 on a single hub", `roles = ["hub"]
streams { replicas = 3 }`, "streams.replicas"},
		{"short leaf user password", `roles = ["hub"]
hub {
  leafnodes {
    listen = "127.0.0.1:7422"
    user "edge" { password = "short" }
  }
}`, "hub.leafnodes.user.edge.password"},
		{"leaf on a hub", `roles = ["hub", "ingest"]
leaf {
  listen = "127.0.0.1:4230"
  hubs   = ["nats-leaf://127.0.0.1:7422"]
}`, "leaf"},
		{"leaf without hubs", `roles = ["ingest"]
leaf {
  listen = "127.0.0.1:4230"
  hubs   = []
}`, "leaf.hubs"},
		{"leaf hub not a URL", `roles = ["ingest"]
leaf {
  listen = "127.0.0.1:4230"
  hubs   = ["127.0.0.1:7422"]
}`, "leaf.hubs"},
		{"leaf tls cert without key", `roles = ["ingest"]
leaf {
  listen = "127.0.0.1:4230"
  hubs   = ["nats-leaf://127.0.0.1:7422"]
  tls { cert_file = "c.pem" }
}`, "leaf.tls"},
	} {
		_, err := Parse([]byte(tc.src), filepath.Join(t.TempDir(), "n.hcl"))
		var errs Errors
		if err == nil {
			t.Errorf("%s: no error, want one for %s", tc.name, tc.key)
			continue
		}
		if e, ok := err.(Errors); ok {
			errs = e
		}
		found := false
		for _, p := range errs {
			found = found || p.Key == tc.key
		}
		if !found {
			t.Errorf("%s: %v, want a problem with key %s", tc.name, err, tc.key)
		}
	}
}
