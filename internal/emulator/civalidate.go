package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	ci "github.com/defender-ci/otelcol-defender-ci/internal/collectiveinsights"
	"github.com/defender-ci/otelcol-defender-ci/internal/contract"
)

// Collective Insights schema (DESIGN.md, "Exporter", API). The emulator is
// stricter than the real service is known to be: a body it rejects is a bug
// in the sender, and the message names the entry and the problem.
var (
	requestKeys  = keySet{allowed: []string{"options", "organization_ids", "data"}, required: []string{"options", "data"}}
	entryKeys    = keySet{allowed: []string{"timestamp", "ioc", "incident", "mitre_codes", "malwares", "detection"}, required: []string{"timestamp", "ioc", "detection"}}
	iocTypes     = []string{contract.TypeIP, contract.TypeDomain, contract.TypeURL, contract.TypeHash, contract.TypeVulnerability}
	detections   = []string{ci.DetectionCorrelation, ci.DetectionPlaybook, ci.DetectionRule, ci.DetectionSandbox}
	ruleSubTypes = []string{ci.SubTypeSigma, ci.SubTypeYara, ci.SubTypeSnort}

	timestampPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)
	cvePattern       = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	hexPattern       = regexp.MustCompile(`^[0-9a-fA-F]+$`)
	domainLabel      = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)
)

// keySet is the keys an object may and must have; null counts as absent
// and is rejected.
type keySet struct{ allowed, required []string }

func (k keySet) check(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, errors.New("must be a JSON object")
	}
	for name, value := range fields {
		if !slices.Contains(k.allowed, name) {
			return nil, fmt.Errorf("unknown key %q", name)
		}
		if bytes.Equal(bytes.TrimSpace(value), []byte("null")) {
			return nil, fmt.Errorf("%s must not be null", name)
		}
	}
	for _, name := range k.required {
		if _, ok := fields[name]; !ok {
			return nil, fmt.Errorf("%s is required", name)
		}
	}
	return fields, nil
}

func decodeStrict(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// ValidateDetections decodes and validates a Collective Insights request
// body. It returns the decoded request whenever its data array could be
// read, with an error when anything is wrong. The exporter's tests use it
// too, so both judge requests by the same rules.
func ValidateDetections(body []byte) (*ci.Request, error) {
	fields, err := requestKeys.check(body)
	if err != nil {
		return nil, fmt.Errorf("body: %v", err)
	}
	req := &ci.Request{}
	if err := decodeStrict(fields["options"], &req.Options); err != nil {
		return nil, fmt.Errorf("options: %v", err)
	}
	var options map[string]json.RawMessage
	if json.Unmarshal(fields["options"], &options) != nil || options["debug"] == nil || string(options["debug"]) == "null" {
		return nil, errors.New("options.debug is required")
	}
	if raw, ok := fields["organization_ids"]; ok {
		if err := decodeStrict(raw, &req.OrganizationIDs); err != nil {
			return nil, fmt.Errorf("organization_ids: %v", err)
		}
		for i, id := range req.OrganizationIDs {
			if strings.TrimSpace(id) == "" {
				return nil, fmt.Errorf("organization_ids[%d] is empty", i)
			}
		}
	}
	var rawEntries []json.RawMessage
	if err := json.Unmarshal(fields["data"], &rawEntries); err != nil {
		return nil, errors.New("data must be an array")
	}
	if len(rawEntries) == 0 {
		return nil, errors.New("data must not be empty")
	}
	req.Data = make([]ci.Entry, len(rawEntries))
	for i, raw := range rawEntries {
		if err := validateEntry(raw, &req.Data[i]); err != nil {
			return req, fmt.Errorf("data[%d]: %v", i, err)
		}
	}
	return req, nil
}

func validateEntry(raw json.RawMessage, en *ci.Entry) error {
	if _, err := entryKeys.check(raw); err != nil {
		return err
	}
	if err := decodeStrict(raw, en); err != nil {
		return err
	}
	if !timestampPattern.MatchString(en.Timestamp) {
		return fmt.Errorf("timestamp %q is not UTC whole seconds like 2006-01-02T15:04:05Z", en.Timestamp)
	}
	if _, err := time.Parse(time.RFC3339, en.Timestamp); err != nil {
		return fmt.Errorf("timestamp %q is not a valid time", en.Timestamp)
	}
	if err := validateIOC(en.IOC); err != nil {
		return err
	}
	for name, list := range map[string][]string{"mitre_codes": en.MitreCodes, "malwares": en.Malwares} {
		for j, s := range list {
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("%s[%d] is empty", name, j)
			}
		}
	}
	return validateDetection(en.Detection)
}

func validateIOC(ioc ci.IOC) error {
	if !slices.Contains(iocTypes, ioc.Type) {
		return fmt.Errorf("ioc.type %q is not one of %v", ioc.Type, iocTypes)
	}
	if ioc.Value == "" {
		return errors.New("ioc.value is empty")
	}
	if strings.TrimSpace(ioc.Value) != ioc.Value {
		return fmt.Errorf("ioc.value %q has surrounding whitespace", ioc.Value)
	}
	if problem := implausible(ioc.Type, ioc.Value); problem != "" {
		return fmt.Errorf("ioc.value %q is not a valid %s: %s", ioc.Value, ioc.Type, problem)
	}
	return nil
}

// implausible says why value cannot be an indicator of type typ ("" if it can).
func implausible(typ, value string) string {
	switch typ {
	case "ip":
		addr, err := netip.ParseAddr(value)
		if err != nil {
			return "does not parse as an address"
		}
		if addr.Zone() != "" {
			return "carries a zone"
		}
	case "hash":
		if !hexPattern.MatchString(value) || (len(value) != 32 && len(value) != 40 && len(value) != 64) {
			return "not the hex of an MD5, SHA-1 or SHA-256"
		}
	case "vulnerability":
		if !cvePattern.MatchString(value) {
			return "not a CVE id"
		}
	case "domain":
		return implausibleDomain(value)
	case "url":
		u, err := url.Parse(value)
		switch {
		case err != nil:
			return "does not parse"
		case u.Scheme == "" || u.Host == "":
			return "needs a scheme and a host"
		case u.User != nil:
			return "carries userinfo (credentials)"
		}
	}
	return ""
}

func implausibleDomain(value string) string {
	if len(value) > 253 {
		return "longer than 253 characters"
	}
	labels := strings.Split(value, ".")
	if len(labels) < 2 {
		return "needs at least two labels"
	}
	for _, l := range labels {
		if !domainLabel.MatchString(l) {
			return fmt.Sprintf("label %q is not a valid DNS label", l)
		}
	}
	return ""
}

func validateDetection(d ci.Detection) error {
	if !slices.Contains(detections, d.Type) {
		return fmt.Errorf("detection.type %q is not one of %v", d.Type, detections)
	}
	if d.Type == ci.DetectionRule {
		if d.ID == "" {
			return errors.New("detection.id is required for detection_rule")
		}
		if !slices.Contains(ruleSubTypes, d.SubType) {
			return fmt.Errorf("detection.sub_type %q is not one of %v (required for detection_rule)", d.SubType, ruleSubTypes)
		}
	}
	return nil
}
