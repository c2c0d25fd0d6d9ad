package stack

import (
	"strings"
	"testing"
)

const articleConfig = `# Database settings
[server]
  port = 9090

[mysql]
  database = "PersonalizedRecommendationSystem"
  ip = "127.0.0.1"   # the host, from the article
  password = "12345678"
  port = 8806
  user = "root"
`

func TestTomlRewriteKeepsLayout(t *testing.T) {
	out, err := tomlRewrite([]byte(articleConfig), map[string]any{
		"mysql.ip": "goapp-mysql", "mysql.port": 3306, "mysql.password": `p"w\x`, "absent.key": "x",
	}, "mysql.ip", "mysql.port")
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		`  ip = "goapp-mysql"   # the host, from the article`,
		"  port = 3306\n",
		`  password = "p\"w\\x"`,
		"[server]\n  port = 9090\n", // the other table's port is left alone
		"# Database settings\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten config lacks %q:\n%s", want, got)
		}
	}
	if v, _ := tomlLookup(out, "mysql.password"); tomlUnquote(v) != `p"w\x` {
		t.Errorf("password round trip: %q", tomlUnquote(v))
	}
}

func TestTomlRewriteQuotedPortAndDottedKeys(t *testing.T) {
	in := "db.host = 'old'\n[db]\nport = \"8806\"\n"
	out, err := tomlRewrite([]byte(in), map[string]any{"db.host": "new", "db.port": 3306}, "db.host", "db.port")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "db.host = \"new\"\n[db]\nport = \"3306\"\n" {
		t.Errorf("got %q", out)
	}
}

func TestTomlRewriteMissingRequiredKey(t *testing.T) {
	_, err := tomlRewrite([]byte("[mysql]\nhost = \"x\"\n"), map[string]any{"mysql.ip": "a"}, "mysql.ip")
	if err == nil || !strings.Contains(err.Error(), `"mysql.ip"`) {
		t.Fatalf("want a missing-key error, got %v", err)
	}
}
