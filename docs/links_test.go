// Package docs holds Breakwater's documentation pages. Its test checks that
// the relative links of every Markdown file in the repository resolve.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

var (
	// inlineLink matches [text](target) and ![alt](target), target up to
	// the first space (a title may follow) or the closing parenthesis.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)[^)]*\)`)
	// refLink matches a reference definition: [label]: target.
	refLink    = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*(\S+)`)
	inlineCode = regexp.MustCompile("`[^`]*`")
	// docRef matches a comment's reference to a page of docs/, with the
	// heading it names in quotes when it names one: docs/design.md,
	// "The hot path is local".
	docRef = regexp.MustCompile(`docs/([A-Za-z0-9_-]+\.md)(?:[,:]?\s*\(?"([^"]+)")?`)
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// TestRelativeLinksResolve checks that every relative link in the
// repository's Markdown files names a file or directory that exists and,
// when it names a heading of a Markdown file (#anchor), a heading that
// file has.
func TestRelativeLinksResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			pages = append(pages, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatalf("no Markdown files under %s", root)
	}
	anchors := map[string]map[string]bool{} // page -> its heading anchors
	for _, page := range pages {
		src, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, page)
		for _, target := range links(string(src)) {
			if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
				continue // a URL, not a file of this repository
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := page
			if file != "" {
				dest = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: %s does not exist", rel, target, file)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			if anchors[dest] == nil {
				b, err := os.ReadFile(dest)
				if err != nil {
					t.Errorf("%s: link %q: %v", rel, target, err)
					continue
				}
				anchors[dest] = headingAnchors(string(b))
			}
			if !anchors[dest][anchor] {
				t.Errorf("%s: link %q: no heading with anchor #%s in %s", rel, target, anchor, filepath.Base(dest))
			}
		}
	}
}

// TestCodeReferencesResolve checks that every page of docs/ that a comment
// in Go or Lua source names exists and, when the comment names a heading
// in quotes, that the page has that heading.
func TestCodeReferencesResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]map[string]bool{}
	refs := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		ext := filepath.Ext(path)
		if d.IsDir() || (ext != ".go" && ext != ".lua") || path == filepath.Join(root, "docs", "links_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range docRef.FindAllStringSubmatch(comments(string(src)), -1) {
			refs++
			page := filepath.Join(root, "docs", m[1])
			b, err := os.ReadFile(page)
			if err != nil {
				t.Errorf("%s: names docs/%s, which does not exist", rel, m[1])
				continue
			}
			if m[2] == "" {
				continue
			}
			if anchors[page] == nil {
				anchors[page] = headingAnchors(string(b))
			}
			if !anchors[page][slug(m[2])] {
				t.Errorf("%s: names the heading %q of docs/%s, which has no such heading", rel, m[2], m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if refs == 0 {
		t.Error("no comment names a page of docs/; the test looks in the wrong place")
	}
}

// comments returns the text of the line comments (// and --) of a Go or
// Lua source, joined by spaces, so that a reference broken over two lines
// reads as one.
func comments(src string) string {
	var b strings.Builder
	for line := range strings.Lines(src) {
		line = strings.TrimSpace(line)
		var ok bool
		if line, ok = strings.CutPrefix(line, "//"); !ok {
			if line, ok = strings.CutPrefix(line, "--"); !ok {
				continue
			}
		}
		b.WriteString(strings.TrimSpace(line))
		b.WriteByte(' ')
	}
	return b.String()
}

// links returns the targets of the links in a Markdown page, outside
// fenced code blocks and inline code.
func links(md string) []string {
	var out []string
	for _, block := range prose(md) {
		block = inlineCode.ReplaceAllString(block, "")
		for _, m := range inlineLink.FindAllStringSubmatch(block, -1) {
			out = append(out, strings.Trim(m[1], "<>"))
		}
		for _, m := range refLink.FindAllStringSubmatch(block, -1) {
			out = append(out, strings.Trim(m[1], "<>"))
		}
	}
	return out
}

// prose returns the runs of lines of a Markdown page that are outside
// fenced code blocks.
func prose(md string) []string {
	var out []string
	var cur strings.Builder
	fence := ""
	for line := range strings.Lines(md) {
		trimmed := strings.TrimSpace(line)
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
			out = append(out, cur.String())
			cur.Reset()
		case fence != "" && strings.HasPrefix(trimmed, fence):
			fence = ""
		case fence == "":
			cur.WriteString(line)
		}
	}
	return append(out, cur.String())
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown page: lower case, punctuation dropped, spaces as hyphens, and
// -1, -2 ... after repeats.
func headingAnchors(md string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, block := range prose(md) {
		for line := range strings.Lines(block) {
			line = strings.TrimSpace(line)
			level := len(line) - len(strings.TrimLeft(line, "#"))
			if level == 0 || level > 6 || !strings.HasPrefix(line[level:], " ") {
				continue
			}
			a := slug(line[level:])
			if n := seen[a]; n > 0 {
				anchors[a+"-"+strconv.Itoa(n)] = true
			} else {
				anchors[a] = true
			}
			seen[a]++
		}
	}
	return anchors
}

func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestLinks(t *testing.T) {
	page := "# Top\n\nSee [a](a.md), [b](b.md#x \"title\"), ![img](i.png) and\n" +
		"[site](https://example.com), `[not](code.md)`.\n\n" +
		"```sh\n[not](fenced.md)\n```\n\n[ref]: ref.md\n"
	got := links(page)
	want := []string{"a.md", "b.md#x", "i.png", "https://example.com", "ref.md"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("links(%q) = %q, want %q", page, got, want)
	}
}

func TestComments(t *testing.T) {
	src := "package x\n\n// see docs/design.md,\n// \"The hot path\n// is local\").\n-- KEYS docs/b.md\n"
	got := docRef.FindAllStringSubmatch(comments(src), -1)
	want := [][]string{
		{`docs/design.md, "The hot path is local"`, "design.md", "The hot path is local"},
		{"docs/b.md", "b.md", ""},
	}
	if !cmp.Equal(got, want) {
		t.Errorf("references in %q = %q, want %q", src, got, want)
	}
}

func TestHeadingAnchors(t *testing.T) {
	page := "# The Go SDK\n## HTTP: Transport\n## `Allow` and `done`\n### The demo, without Docker\n" +
		"## Notes\n## Notes\n```\n# not a heading\n```\n#hashtag\n"
	got := headingAnchors(page)
	for _, a := range []string{"the-go-sdk", "http-transport", "allow-and-done", "the-demo-without-docker", "notes", "notes-1"} {
		if !got[a] {
			t.Errorf("headingAnchors(%q) has no %q; has %v", page, a, got)
		}
	}
	for _, a := range []string{"not-a-heading", "hashtag"} {
		if got[a] {
			t.Errorf("headingAnchors(%q) has %q, want it not", page, a)
		}
	}
}
