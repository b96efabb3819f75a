// A second verifier of launchrelay's decision log, written from docs/audit-log.md alone (standard library only),
// so that the tests can show the format is specified well enough for another implementation to agree.
//
//	go run . --key KEY_ID=BASE64 [--key ...] statements.jsonl
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

type problem struct {
	Kind   string  `json:"kind"`
	Log    *string `json:"log"`
	Detail string  `json:"detail"`
}

type report struct {
	Ok       bool           `json:"ok"`
	Checked  map[string]int `json:"checked"`
	Problems []problem      `json:"problems"`
}

func (r *report) add(kind string, log *string, detail string) {
	r.Problems = append(r.Problems, problem{kind, log, detail})
}

func leafHash(b []byte) []byte {
	h := sha256.Sum256(append([]byte{0}, b...))
	return h[:]
}

func nodeHash(l, r []byte) []byte {
	buf := append(append([]byte{1}, l...), r...)
	h := sha256.Sum256(buf)
	return h[:]
}

func split(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

func root(hs [][]byte) []byte {
	if len(hs) == 0 {
		h := sha256.Sum256(nil)
		return h[:]
	}
	if len(hs) == 1 {
		return hs[0]
	}
	k := split(len(hs))
	return nodeHash(root(hs[:k]), root(hs[k:]))
}

func all32(hs ...[]byte) bool {
	for _, h := range hs {
		if len(h) != 32 {
			return false
		}
	}
	return true
}

// RFC 9162 section 2.1.3.2
func verifyInclusion(index, size uint64, leaf []byte, proof [][]byte, want []byte) bool {
	if index >= size || !all32(append(proof, leaf, want)...) {
		return false
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range proof {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(r, want)
}

// RFC 9162 section 2.1.4.2
func verifyConsistency(first, second uint64, r1, r2 []byte, proof [][]byte) bool {
	if !all32(append(proof, r1, r2)...) || first > second {
		return false
	}
	if first == second {
		return len(proof) == 0 && bytes.Equal(r1, r2)
	}
	if first == 0 || len(proof) == 0 {
		return false
	}
	path := proof
	if first&(first-1) == 0 {
		path = append([][]byte{r1}, proof...)
	}
	fn, sn := first-1, second-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = nodeHash(c, fr), nodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(fr, r1) && bytes.Equal(sr, r2)
}

func str(m map[string]any, k string) (string, bool) {
	s, ok := m[k].(string)
	return s, ok
}

func integer(m map[string]any, k string) (int64, bool) {
	f, ok := m[k].(float64)
	if !ok || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}

func hash32(v any) []byte {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return nil
	}
	return b
}

func proofOf(v any) ([][]byte, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := [][]byte{}
	for _, x := range list {
		h := hash32(x)
		if h == nil {
			return nil, false
		}
		out = append(out, h)
	}
	return out, true
}

func b64(v any) []byte {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

var leafFields = []string{"format", "log", "index", "at", "outcome", "message_id", "sender", "recipients", "reasons", "sha256"}

func parseLeaf(raw []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return nil
	}
	if f, ok := m["format"].(float64); !ok || f != 1 {
		return nil
	}
	for _, f := range leafFields {
		if _, ok := m[f]; !ok {
			return nil
		}
	}
	return m
}

func leafIs(m map[string]any, log string, index int64) bool {
	l, _ := str(m, "log")
	i, ok := integer(m, "index")
	return m != nil && l == log && ok && i == index
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedSizes[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

func verifyAll(statements []map[string]any, keys map[string]ed25519.PublicKey) report {
	r := report{Checked: map[string]int{}, Problems: []problem{}}
	byType := map[string][]map[string]any{}
	for _, s := range statements {
		t, _ := str(s, "type")
		byType[t] = append(byType[t], s)
	}
	// 1. signatures
	roots := map[string]map[int64][][]byte{}
	for _, h := range byType["tree_head"] {
		r.Checked["tree_heads"]++
		log, logOk := str(h, "log")
		size, sizeOk := integer(h, "size")
		rootHex, _ := str(h, "root")
		rt := hash32(h["root"])
		at, atOk := str(h, "at")
		keyID := fmt.Sprint(h["key_id"])
		key, known := keys[keyID]
		sig := b64(h["signature"])
		signed := logOk && sizeOk && size >= 0 && rt != nil && atOk && known && sig != nil &&
			ed25519.Verify(key, []byte(fmt.Sprintf("launchrelay tree head v1\n%s\n%d\n%s\n%s\n", log, size, rootHex, at)), sig)
		if !signed {
			var lp *string
			if logOk {
				lp = &log
			}
			r.add("bad_signature", lp, "tree head is not signed by a relay key")
			continue
		}
		if roots[log] == nil {
			roots[log] = map[int64][][]byte{}
		}
		dup := false
		for _, x := range roots[log][size] {
			dup = dup || bytes.Equal(x, rt)
		}
		if !dup {
			roots[log][size] = append(roots[log][size], rt)
		}
	}
	// 2. split views
	for _, log := range sortedKeys(roots) {
		for _, size := range sortedSizes(roots[log]) {
			if len(roots[log][size]) > 1 {
				l := log
				r.add("split_view", &l, fmt.Sprintf("different signed roots for size %d", size))
			}
		}
	}
	// the leaves the party holds
	type place struct {
		log   string
		index int64
	}
	leaves := map[string]map[int64][]byte{}
	doubled := []place{}
	for _, s := range byType["leaf"] {
		log, ok1 := str(s, "log")
		index, ok2 := integer(s, "index")
		raw := b64(s["leaf"])
		if !ok1 || !ok2 || raw == nil {
			continue
		}
		if leaves[log] == nil {
			leaves[log] = map[int64][]byte{}
		}
		if seen, ok := leaves[log][index]; ok {
			if !bytes.Equal(seen, raw) {
				doubled = append(doubled, place{log, index})
			}
			continue
		}
		leaves[log][index] = raw
	}
	whole := func(log string, size int64) ([][]byte, bool) {
		held := leaves[log]
		hs := [][]byte{}
		for i := int64(0); i < size; i++ {
			raw, ok := held[i]
			if !ok {
				return nil, false
			}
			hs = append(hs, leafHash(raw))
		}
		return hs, true
	}
	heldMatches := func(log string, size int64) bool {
		hs, ok := whole(log, size)
		if !ok {
			return false
		}
		computed := root(hs)
		for _, x := range roots[log][size] {
			if bytes.Equal(x, computed) {
				return true
			}
		}
		return false
	}
	// 3. consistency
	type span struct {
		log      string
		from, to int64
	}
	proofs := map[span][][][]byte{}
	for _, c := range byType["consistency"] {
		log, ok1 := str(c, "log")
		from, ok2 := integer(c, "from")
		to, ok3 := integer(c, "to")
		p, ok4 := proofOf(c["proof"])
		if ok1 && ok2 && ok3 && ok4 {
			proofs[span{log, from, to}] = append(proofs[span{log, from, to}], p)
		}
	}
	for _, log := range sortedKeys(roots) {
		sizes := sortedSizes(roots[log])
		for i := 0; i+1 < len(sizes); i++ {
			first, second := sizes[i], sizes[i+1]
			r.Checked["consistency"]++
			if first == 0 {
				continue
			}
			l := log
			given := proofs[span{log, first, second}]
			if len(given) == 0 {
				if heldMatches(log, first) && heldMatches(log, second) {
					continue // the party's own copy of the log proves it
				}
				r.add("unproven", &l, fmt.Sprintf("no consistency proof from %d to %d", first, second))
				continue
			}
			ok := true
			for _, a := range roots[log][first] {
				for _, b := range roots[log][second] {
					any := false
					for _, p := range given {
						any = any || verifyConsistency(uint64(first), uint64(second), a, b, p)
					}
					ok = ok && any
				}
			}
			if !ok {
				r.add("not_consistent", &l, fmt.Sprintf("head %d does not extend head %d", second, first))
			}
		}
	}
	// 4. whole logs
	for _, d := range doubled {
		l := d.log
		r.add("leaves_mismatch", &l, fmt.Sprintf("two different leaves at index %d", d.index))
	}
	proven := []map[string]any{}
	for _, log := range sortedKeys(leaves) {
		for _, size := range sortedSizes(roots[log]) {
			if size == 0 {
				continue
			}
			hs, ok := whole(log, size)
			if !ok {
				continue
			}
			r.Checked["whole_logs"]++
			l := log
			misplaced := int64(-1)
			for i := int64(0); i < size; i++ {
				if !leafIs(parseLeaf(leaves[log][i]), log, i) {
					misplaced = i
					break
				}
			}
			computed := root(hs)
			matches := false
			for _, x := range roots[log][size] {
				matches = matches || bytes.Equal(x, computed)
			}
			if misplaced >= 0 {
				r.add("leaves_mismatch", &l, fmt.Sprintf("leaf %d does not name its own log and place", misplaced))
			} else if !matches {
				r.add("leaves_mismatch", &l, "the leaves do not hash to the signed root")
			} else {
				for i := int64(0); i < size; i++ {
					proven = append(proven, parseLeaf(leaves[log][i]))
				}
			}
		}
	}
	// 5. inclusion
	for _, s := range byType["inclusion"] {
		r.Checked["inclusion"]++
		log, ok1 := str(s, "log")
		index, ok2 := integer(s, "index")
		size, ok3 := integer(s, "size")
		raw := b64(s["leaf"])
		p, ok4 := proofOf(s["proof"])
		var lp *string
		if ok1 {
			lp = &log
		}
		if !ok1 || !ok2 || !ok3 || !ok4 || raw == nil {
			r.add("not_included", lp, "malformed inclusion statement")
			continue
		}
		known := roots[log][size]
		if len(known) == 0 {
			r.add("no_head", lp, fmt.Sprintf("no signed head of size %d", size))
			continue
		}
		body := parseLeaf(raw)
		ok := leafIs(body, log, index)
		for _, want := range known {
			ok = ok && index >= 0 && size >= 0 && verifyInclusion(uint64(index), uint64(size), leafHash(raw), p, want)
		}
		if !ok {
			r.add("not_included", lp, fmt.Sprintf("leaf %d is not in the head of size %d", index, size))
			continue
		}
		proven = append(proven, body)
	}
	// 6. receipts
	byID := map[string][]map[string]any{}
	for _, b := range proven {
		id, _ := str(b, "message_id")
		byID[id] = append(byID[id], b)
	}
	for _, rc := range byType["receipt"] {
		r.Checked["receipts"]++
		id, _ := str(rc, "message_id")
		found := false
		for _, b := range byID[id] {
			same := true
			for _, k := range []string{"sender", "message_id", "outcome", "sha256"} {
				v, has := rc[k]
				if !has && (k == "sender" || k == "sha256") {
					continue // named only when the party holds it
				}
				switch v.(type) {
				case string, nil:
					if !has || b[k] != v {
						same = false
					}
				default:
					same = false
				}
			}
			if same {
				found = true
				break
			}
		}
		if !found {
			s1, _ := str(rc, "sender")
			s3, _ := str(rc, "outcome")
			r.add("missing", nil, fmt.Sprintf("%s's %s (%s) is in no proven leaf", s1, id, s3))
		}
	}
	r.Ok = len(r.Problems) == 0
	return r
}

func main() {
	keys := map[string]ed25519.PublicKey{}
	var files []string
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		if args[i] == "--key" && i+1 < len(args) {
			id, b, ok := strings.Cut(args[i+1], "=")
			raw, err := base64.StdEncoding.DecodeString(b)
			if !ok || err != nil || len(raw) != ed25519.PublicKeySize {
				fmt.Fprintln(os.Stderr, "--key wants KEY_ID=BASE64 of a 32-byte Ed25519 public key")
				os.Exit(2)
			}
			keys[id] = ed25519.PublicKey(raw)
			i++
		} else {
			files = append(files, args[i])
		}
	}
	var statements []map[string]any
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || m == nil {
				fmt.Fprintln(os.Stderr, "not a statement:", line)
				os.Exit(2)
			}
			statements = append(statements, m)
		}
		fh.Close()
	}
	r := verifyAll(statements, keys)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if !r.Ok {
		os.Exit(1)
	}
}
