package awsrelease

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Report is everything the markdown report is made from.
type Report struct {
	Command  string
	Machine  []string // "key: value" lines
	Versions []string
	Settings []string
	Latency  time.Duration
	Results  []Result
	// Reference is the variant the ratios are taken against (packer).
	Reference string
}

// row is one line of the main table: a sample of wall times and request
// counts.
type row struct {
	name      string
	walls     []float64 // seconds
	reqs      []float64
	reference bool
}

func (rep Report) rows() []row {
	var order []string
	by := map[string]*row{}
	add := func(name string, wall time.Duration, reqs int) {
		r, ok := by[name]
		if !ok {
			r = &row{name: name, reference: name == rep.Reference}
			by[name] = r
			order = append(order, name)
		}
		r.walls = append(r.walls, wall.Seconds())
		r.reqs = append(r.reqs, float64(reqs))
	}
	for _, res := range rep.Results {
		if len(res.Phases) == 0 {
			add(res.Variant, res.Wall, len(res.Log))
			continue
		}
		add(res.Variant+": build+test+replicate+publish", res.Wall, len(res.Log))
		var wall time.Duration
		var n int
		for _, p := range res.Phases {
			if p.Name != "test" {
				wall += p.Wall
				n += len(p.Log)
			}
		}
		add(res.Variant+": build+replicate+publish (no boot test)", wall, n)
	}
	out := make([]row, 0, len(order))
	for _, name := range order {
		out = append(out, *by[name])
	}
	// The reference first, the rest in the order they were defined.
	slices.SortStableFunc(out, func(a, b row) int {
		switch {
		case a.reference && !b.reference:
			return -1
		case b.reference && !a.reference:
			return 1
		}
		return 0
	})
	return out
}

// Markdown renders the report's generated section.
func (rep Report) Markdown() string {
	var b bytes.Buffer
	rows := rep.rows()
	var ref Summary
	var refReqs Summary
	for _, r := range rows {
		if r.reference {
			ref, refReqs = Summarize(r.walls), Summarize(r.reqs)
		}
	}
	fmt.Fprintf(&b, "Command: `%s`\n\n", rep.Command)
	fmt.Fprintf(&b, "| variant | runs | wall median (s) | wall min–max (s) | requests median | wall ratio to %s | request ratio to %s |\n", rep.Reference, rep.Reference)
	fmt.Fprintf(&b, "|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		w, q := Summarize(r.walls), Summarize(r.reqs)
		ratio, qratio := "–", "–"
		if ref.Median > 0 && !r.reference {
			ratio = fmt.Sprintf("%.2f", w.Median/ref.Median)
			qratio = fmt.Sprintf("%.2f", q.Median/refReqs.Median)
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f–%.2f | %.0f | %s | %s |\n", r.name, w.N, w.Median, w.Min, w.Max, q.Median, ratio, qratio)
	}
	b.WriteString("\n")
	rep.phaseTable(&b)
	rep.profiles(&b)
	b.WriteString("#### Machine\n\n")
	for _, l := range rep.Machine {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n#### Versions\n\n")
	for _, l := range rep.Versions {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n#### Settings\n\n")
	for _, l := range rep.Settings {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	return b.String()
}

// phaseTable shows the separate kiln commands' medians.
func (rep Report) phaseTable(w io.Writer) {
	walls, reqs := map[string][]float64{}, map[string][]float64{}
	var names []string
	variant := ""
	for _, res := range rep.Results {
		for _, p := range res.Phases {
			if !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
			walls[p.Name] = append(walls[p.Name], p.Wall.Seconds())
			reqs[p.Name] = append(reqs[p.Name], float64(len(p.Log)))
			variant = res.Variant
		}
	}
	if len(names) == 0 {
		return
	}
	fmt.Fprintf(w, "Phases of `%s`, one process each (each pays process start, the account check and finding the run):\n\n", variant)
	fmt.Fprintf(w, "| phase | wall median (s) | wall min–max (s) | requests median |\n|---|---:|---:|---:|\n")
	for _, n := range names {
		s, q := Summarize(walls[n]), Summarize(reqs[n])
		fmt.Fprintf(w, "| %s | %.2f | %.2f–%.2f | %.0f |\n", n, s.Median, s.Min, s.Max, q.Median)
	}
	fmt.Fprintln(w)
}

// profiles breaks the median run of each variant down by request kind.
func (rep Report) profiles(w io.Writer) {
	by := map[string][]Result{}
	var order []string
	for _, res := range rep.Results {
		if _, ok := by[res.Variant]; !ok {
			order = append(order, res.Variant)
		}
		by[res.Variant] = append(by[res.Variant], res)
	}
	fmt.Fprintf(w, "#### Where the time goes (the median run of each variant)\n\n")
	fmt.Fprintf(w, "*busy*: wall time with at least one request in flight; *round trips*: busy / %s, about how many requests lie one after another on the critical path; *idle*: the rest of the span (poll pauses, process start, local work).\n\n", rep.Latency)
	fmt.Fprintf(w, "| variant | round | requests | span (s) | busy (s) | idle (s) | round trips |\n|---|---:|---:|---:|---:|---:|---:|\n")
	medians := map[string]Result{}
	for _, name := range order {
		rs := slices.Clone(by[name])
		slices.SortFunc(rs, func(a, b Result) int { return int(a.Wall - b.Wall) })
		m := rs[(len(rs)-1)/2]
		medians[name] = m
		p := NewProfile(m.Log, m.Span, rep.Latency)
		fmt.Fprintf(w, "| %s | %d | %d | %.2f | %.2f | %.2f | %.0f |\n", name, m.Round, p.Requests, p.Span.Seconds(), p.Busy.Seconds(), p.Idle.Seconds(), p.Rounds)
	}
	fmt.Fprintln(w)
	for _, name := range order {
		m := medians[name]
		p := NewProfile(m.Log, m.Span, rep.Latency)
		fmt.Fprintf(w, "<details><summary>%s: requests by action</summary>\n\n", name)
		fmt.Fprintf(w, "| action | count | busy (s) | busy / latency |\n|---|---:|---:|---:|\n")
		for _, a := range p.Actions {
			fmt.Fprintf(w, "| %s:%s | %d | %.2f | %.1f |\n", a.Service, a.Action, a.Count, a.Busy.Seconds(), float64(a.Busy)/float64(rep.Latency))
		}
		fmt.Fprintf(w, "\n</details>\n\n")
	}
}

// Markers delimit the generated part of the report file.
const (
	beginMarker = "<!-- BEGIN GENERATED by bench/awsrelease: do not edit by hand -->"
	endMarker   = "<!-- END GENERATED -->"
)

// WriteReport puts section between the markers of the file at path,
// keeping the text around them; a file without markers gets them appended.
func WriteReport(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	block := beginMarker + "\n\n" + section + "\n" + endMarker
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	switch {
	case i >= 0 && j > i:
		text = text[:i] + block + text[j+len(endMarker):]
	case text == "":
		text = "# aws release benchmark: kiln versus Packer\n\n" + block + "\n"
	default:
		text = strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// WriteLog writes a run's request log as CSV (start and end in seconds
// from the run's first request).
func WriteLog(path string, res Result) error {
	var b bytes.Buffer
	b.WriteString("start_s,end_s,service,region,action,status,phase,bytes\n")
	phaseOf := map[int]string{}
	n := 0
	for _, p := range res.Phases {
		for range p.Log {
			phaseOf[n] = p.Name
			n++
		}
	}
	var t0 time.Duration
	if len(res.Log) > 0 {
		t0 = res.Log[0].Start
		for _, r := range res.Log {
			t0 = min(t0, r.Start)
		}
	}
	for i, r := range res.Log {
		fmt.Fprintf(&b, "%.3f,%.3f,%s,%s,%s,%d,%s,%d\n", (r.Start - t0).Seconds(), (r.End - t0).Seconds(), r.Service, r.Region, r.Action, r.Status, phaseOf[i], r.Bytes)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
