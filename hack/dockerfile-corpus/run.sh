#!/usr/bin/env bash
# Lint a pinned corpus of public Dockerfiles and score the findings against
# the hand judgments. Usage: hack/dockerfile-corpus/run.sh [findings|score]
#
# corpus.txt      owner/repo commit path, one per line
# judgments.tsv   file<TAB>line<TAB>rule<TAB>tp|fp<TAB>why, judged by hand
#
# Each repository is taken at its pinned commit from a local mirror
# ($MIRROR_DIR/<owner>+<name>/repo, a bare git directory) or cloned from
# GitHub, into $CORPUS_DIR (default .cache/dockerfile-corpus, ignored by git):
# fetched files never go into the repository. Each Dockerfile is linted as a
# new user would: `docker k8sprep dockerfile lint FILE`, its folder as the
# implied context.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${CORPUS_DIR:-$root/.cache/dockerfile-corpus}
mirror=${MIRROR_DIR:-/work/.mirror}
mode=${1:-score}
mkdir -p "$work/src"

bin=${K8SPREP:-}
if [ -z "$bin" ]; then
	bin=$work/docker-k8sprep
	(cd "$root" && go build -o "$bin" ./cmd/docker-k8sprep)
fi

# extract GITDIR COMMIT DIR DEST: the files of DIR at COMMIT (a mirror may
# lack some large blobs: those are skipped).
extract() {
	python3 - "$@" <<'PY'
import os, subprocess, sys
git, commit, sub, dest = sys.argv[1:]
ls = subprocess.run(["git", "--git-dir", git, "ls-tree", "-r", "-z", commit, "--", sub or "."],
                    check=True, capture_output=True).stdout.split(b"\0")
entries = [e.split(b"\t", 1) for e in ls if e]
entries = [(m.split()[2].decode(), p.decode()) for m, p in entries if m.split()[1] == b"blob"]
cat = subprocess.Popen(["git", "--git-dir", git, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
for sha, path in entries:
    cat.stdin.write(sha.encode() + b"\n")
    cat.stdin.flush()
    head = cat.stdout.readline().split()
    if len(head) < 3 or head[1] == b"missing":
        continue
    data = cat.stdout.read(int(head[2]))
    cat.stdout.read(1)
    out = os.path.join(dest, path)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(data)
cat.stdin.close()
cat.wait()
PY
}

checkout() { # repo commit path -> directory holding the path's folder
	local dir=$work/src/${1/\//+}@${2:0:12}
	local sub
	sub=$(dirname "$3")
	[ "$sub" = . ] && sub=
	if [ ! -e "$dir/$3" ]; then
		local git=$mirror/${1/\//+}/repo
		mkdir -p "$dir"
		if [ ! -d "$git" ]; then
			git=$work/git/${1/\//+}.git
			[ -d "$git" ] || git clone -q --bare --filter=blob:none "https://github.com/$1" "$git"
		fi
		extract "$git" "$2" "$sub" "$dir"
	fi
	echo "$dir"
}

findings=$work/findings.tsv
: >"$findings"
n=0
while read -r repo commit path; do
	case "$repo" in '' | '#'*) continue ;; esac
	dir=$(checkout "$repo" "$commit" "$path")
	n=$((n + 1))
	"$bin" dockerfile lint "$dir/$path" -o json --failure-threshold none |
		jq -r --arg f "$repo:$path" '(.findings // [])[] | [$f, .line, .rule, .severity, .message] | @tsv' >>"$findings"
done <"$here/corpus.txt"
echo "$n Dockerfiles, $(wc -l <"$findings") findings in $findings" >&2
[ "$mode" = findings ] && { cat "$findings"; exit 0; }

"$bin" dockerfile lint --list-rules -o json >"$work/rules.json"
python3 - "$findings" "$here/judgments.tsv" "$work/rules.json" <<'PY'
import collections, json, sys
findings = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
judged = {}
for l in open(sys.argv[2]):
    if l.startswith("#") or not l.strip():
        continue
    f, line, rule, verdict = l.rstrip("\n").split("\t")[:4]
    judged[(f, line, rule)] = verdict
source = {r["id"]: r["source"] for r in json.load(open(sys.argv[3]))}
rows = collections.defaultdict(lambda: collections.Counter())
unjudged = []
for f, line, rule, sev, msg in findings:
    v = judged.get((f, line, rule))
    if v is None:
        unjudged.append((f, line, rule, sev, msg))
        v = "unjudged"
    rows[(source.get(rule, "?"), rule)][v] += 1
    rows[("all", "")][v] += 1
    rows[(source.get(rule, "?"), "")][v] += 1
    if sev == "error":
        rows[("error severity", "")][v] += 1
print("| source | rule | findings | right | wrong | precision |")
print("|---|---|---:|---:|---:|---:|")
for (src, rule), c in sorted(rows.items(), key=lambda kv: (kv[0][0] != "all", kv[0][0], kv[0][1] != "", kv[0][1])):
    n = sum(c.values())
    p = "%.0f %%" % (100 * c["tp"] / (c["tp"] + c["fp"])) if c["tp"] + c["fp"] else "-"
    print("| %s | %s | %d | %d | %d | %s |" % (src, rule or "**all**", n, c["tp"], c["fp"], p))
for u in unjudged:
    print("unjudged:", "\t".join(u), file=sys.stderr)
PY
