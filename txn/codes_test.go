package txn

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCodesDocumented keeps three lists in step: the Code constants in
// errors.go, the Codes slice, and docs/ingest-errors.md (a table row and an
// example section per code).
func TestCodesDocumented(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || vs.Type == nil || len(vs.Values) != 1 {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "Code" {
			if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
				s, _ := strconv.Unquote(lit.Value)
				consts = append(consts, s)
			}
		}
		return true
	})
	listed := map[string]bool{}
	for _, c := range Codes {
		if listed[string(c)] {
			t.Errorf("Codes lists %q twice", c)
		}
		listed[string(c)] = true
	}
	if len(consts) != len(Codes) {
		t.Errorf("errors.go declares %d codes, Codes lists %d", len(consts), len(Codes))
	}
	doc, err := os.ReadFile("../docs/ingest-errors.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range consts {
		if !listed[c] {
			t.Errorf("code %q is not in Codes", c)
		}
		if !strings.Contains(string(doc), "| `"+c+"` |") {
			t.Errorf("docs/ingest-errors.md has no table row for %q", c)
		}
		if !strings.Contains(string(doc), "\n### `"+c+"`\n") {
			t.Errorf("docs/ingest-errors.md has no example section for %q", c)
		}
	}
}
