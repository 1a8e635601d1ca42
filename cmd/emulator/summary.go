package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/defender-ci/otelcol-defender-ci/internal/emulator"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
)

var iocTypes = []string{"ip", "domain", "url", "hash", "vulnerability"}

// statsLine is a one-line account of the traffic so far.
func statsLine(s emulator.Stats) string {
	return fmt.Sprintf("served %d alerts in %d Graph requests (%d tokens issued); accepted %d entries in %d Collective Insights requests (%d duplicates, %d rejected); foreign host called %d times, %d with credentials",
		s.AlertsServed, s.GraphRequestsTotal(), s.TokensIssued, s.EntriesAccepted, s.CIRequestsTotal(), s.EntriesDuplicate, s.EntriesRejected,
		s.ForeignRequests, s.ForeignAuthorized)
}

// writeSummary prints accepted entries by incident.type (the service
// source) and ioc.type.
func writeSummary(w io.Writer, entries []ci.Entry) {
	counts := map[string]map[string]int{}
	for _, en := range entries {
		source := "(none)"
		if en.Incident != nil && en.Incident.Type != "" {
			source = en.Incident.Type
		}
		if counts[source] == nil {
			counts[source] = map[string]int{}
		}
		counts[source][en.IOC.Type]++
	}
	sources := make([]string, 0, len(counts))
	for s := range counts {
		sources = append(sources, s)
	}
	slices.Sort(sources)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "service source\t")
	for _, t := range iocTypes {
		fmt.Fprintf(tw, "%s\t", t)
	}
	fmt.Fprintln(tw, "total\t")
	totals := map[string]int{}
	for _, s := range sources {
		fmt.Fprintf(tw, "%s\t", s)
		row := 0
		for _, t := range iocTypes {
			fmt.Fprintf(tw, "%d\t", counts[s][t])
			row += counts[s][t]
			totals[t] += counts[s][t]
		}
		fmt.Fprintf(tw, "%d\t\n", row)
	}
	fmt.Fprint(tw, "total\t")
	for _, t := range iocTypes {
		fmt.Fprintf(tw, "%d\t", totals[t])
	}
	fmt.Fprintf(tw, "%d\t\n", len(entries))
	_ = tw.Flush()
}
