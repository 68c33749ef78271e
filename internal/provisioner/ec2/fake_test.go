package ec2

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEC2 is an httptest server speaking the EC2 Query API (form-encoded
// POSTs, XML answers shaped as in the EC2 API reference) for the actions the
// provisioner uses.
type fakeEC2 struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	calls     []url.Values // every request, in order
	instances []*fakeInstance
	nextID    int
	pageSize  int
	// failRun, when set, may refuse a RunInstances call (n counts them from
	// 1). create=true makes the fake create the instance anyway, as if the
	// response had been lost.
	failRun func(n int, form url.Values) (e *fakeError, create bool)
	// failDescribe, when set, may refuse a DescribeInstances call.
	failDescribe func(n int, form url.Values) *fakeError
	// failTerminate, when set, may refuse a TerminateInstances call.
	failTerminate func(form url.Values) *fakeError
	runCalls      int
	descCalls     int
}

type fakeError struct {
	status int
	code   string
}

type fakeInstance struct {
	id, state, instanceType, subnet, image, clientToken, privateIP, reason string
	tags                                                                   map[string]string
	launched                                                               time.Time
}

func newFakeEC2(t *testing.T) *fakeEC2 {
	f := &fakeEC2{t: t, pageSize: 1000}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// add puts an instance into the fake's world.
func (f *fakeEC2) add(state, daemonID, provisionerName, pool, runner string) *fakeInstance {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	i := &fakeInstance{
		id: fmt.Sprintf("i-%017x", f.nextID), state: state, instanceType: "t3.micro",
		subnet: "subnet-a", image: "ami-0123", privateIP: fmt.Sprintf("10.0.0.%d", f.nextID),
		launched: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		tags: map[string]string{
			TagDaemonID: daemonID, TagProvisioner: provisionerName, TagPool: pool,
			TagRunnerName: runner, "Name": runner,
		},
	}
	f.instances = append(f.instances, i)
	return i
}

func (f *fakeEC2) callsOf(action string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []url.Values
	for _, c := range f.calls {
		if c.Get("Action") == action {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeEC2) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.instances)
}

func (f *fakeEC2) instance(id string) *fakeInstance {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, i := range f.instances {
		if i.id == id {
			cp := *i
			return &cp
		}
	}
	return nil
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func (f *fakeEC2) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		f.writeError(w, &fakeError{400, "InvalidAction"})
		return
	}
	if err := r.ParseForm(); err != nil {
		f.writeError(w, &fakeError{400, "MalformedQueryString"})
		return
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/ec2/aws4_request") {
		f.writeError(w, &fakeError{401, "AuthFailure"})
		return
	}
	form := r.PostForm
	if form.Get("Version") != "2016-11-15" {
		f.writeError(w, &fakeError{400, "InvalidParameterValue"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, form)
	switch form.Get("Action") {
	case "RunInstances":
		f.runInstances(w, form)
	case "DescribeInstances":
		f.describeInstances(w, form)
	case "TerminateInstances":
		f.terminateInstances(w, form)
	default:
		f.writeError(w, &fakeError{400, "InvalidAction"})
	}
}

func (f *fakeEC2) runInstances(w http.ResponseWriter, form url.Values) {
	f.runCalls++
	if form.Get("MinCount") != "1" || form.Get("MaxCount") != "1" {
		f.writeError(w, &fakeError{400, "InvalidParameterValue"})
		return
	}
	token := form.Get("ClientToken")
	if token != "" { // idempotency: the same token answers the same instance
		for _, i := range f.instances {
			if i.clientToken == token {
				f.writeXML(w, http.StatusOK, runResponse{Xmlns: xmlns, RequestID: "req-run", ReservationID: "r-1", OwnerID: "123456789012",
					Instances: []xmlInstance{i.xml()}})
				return
			}
		}
	}
	var fail *fakeError
	create := true
	if f.failRun != nil {
		fail, create = f.failRun(f.runCalls, form)
		if fail == nil {
			create = true
		}
	}
	var inst *fakeInstance
	if create {
		f.nextID++
		inst = &fakeInstance{
			id: fmt.Sprintf("i-%017x", f.nextID), state: "pending", instanceType: form.Get("InstanceType"),
			subnet: form.Get("SubnetId"), image: form.Get("ImageId"), clientToken: token,
			privateIP: fmt.Sprintf("10.0.1.%d", f.nextID), launched: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			tags: map[string]string{},
		}
		for n := 1; ; n++ {
			p := fmt.Sprintf("TagSpecification.%d.", n)
			rt := form.Get(p + "ResourceType")
			if rt == "" {
				break
			}
			if rt != "instance" {
				continue
			}
			for m := 1; ; m++ {
				k := form.Get(fmt.Sprintf("%sTag.%d.Key", p, m))
				if k == "" {
					break
				}
				inst.tags[k] = form.Get(fmt.Sprintf("%sTag.%d.Value", p, m))
			}
		}
		f.instances = append(f.instances, inst)
	}
	if fail != nil {
		f.writeError(w, fail)
		return
	}
	f.writeXML(w, http.StatusOK, runResponse{Xmlns: xmlns, RequestID: "req-run", ReservationID: "r-1", OwnerID: "123456789012",
		Instances: []xmlInstance{inst.xml()}})
}

func (f *fakeEC2) describeInstances(w http.ResponseWriter, form url.Values) {
	f.descCalls++
	if f.failDescribe != nil {
		if e := f.failDescribe(f.descCalls, form); e != nil {
			f.writeError(w, e)
			return
		}
	}
	ids := indexed(form, "InstanceId")
	filters := map[string][]string{}
	for n := 1; ; n++ {
		name := form.Get(fmt.Sprintf("Filter.%d.Name", n))
		if name == "" {
			break
		}
		filters[name] = indexed(form, fmt.Sprintf("Filter.%d.Value", n))
	}
	if len(ids) > 0 && (form.Get("MaxResults") != "" || form.Get("NextToken") != "") {
		f.writeError(w, &fakeError{400, "InvalidParameterCombination"})
		return
	}
	var match []*fakeInstance
	for _, id := range ids {
		found := false
		for _, i := range f.instances {
			if i.id == id {
				found = true
			}
		}
		if !found {
			f.writeError(w, &fakeError{400, "InvalidInstanceID.NotFound"})
			return
		}
	}
	for _, i := range f.instances {
		if len(ids) > 0 && !contains(ids, i.id) {
			continue
		}
		if i.matches(filters) {
			match = append(match, i)
		}
	}
	start := 0
	if tok := form.Get("NextToken"); tok != "" {
		var err error
		if start, err = strconv.Atoi(tok); err != nil {
			f.writeError(w, &fakeError{400, "InvalidPaginationToken"})
			return
		}
	}
	size := f.pageSize
	if mr := form.Get("MaxResults"); mr != "" {
		n, _ := strconv.Atoi(mr)
		if n < 5 || n > 1000 {
			f.writeError(w, &fakeError{400, "InvalidParameterValue"})
			return
		}
		size = min(size, n)
	}
	end := min(start+size, len(match))
	resp := describeResponse{Xmlns: xmlns, RequestID: "req-describe"}
	for _, i := range match[start:end] { // one reservation per instance, as RunInstances made them
		resp.Reservations = append(resp.Reservations, xmlReservation{ReservationID: "r-" + i.id[2:], OwnerID: "123456789012",
			Instances: []xmlInstance{i.xml()}})
	}
	if end < len(match) {
		resp.NextToken = strconv.Itoa(end)
	}
	f.writeXML(w, http.StatusOK, resp)
}

func (f *fakeEC2) terminateInstances(w http.ResponseWriter, form url.Values) {
	if f.failTerminate != nil {
		if e := f.failTerminate(form); e != nil {
			f.writeError(w, e)
			return
		}
	}
	ids := indexed(form, "InstanceId")
	resp := terminateResponse{Xmlns: xmlns, RequestID: "req-terminate"}
	for _, id := range ids {
		var inst *fakeInstance
		for _, i := range f.instances {
			if i.id == id {
				inst = i
			}
		}
		if inst == nil {
			f.writeError(w, &fakeError{400, "InvalidInstanceID.NotFound"})
			return
		}
		prev := inst.state
		if inst.state != "terminated" {
			inst.state = "shutting-down"
			inst.reason = "Client.UserInitiatedShutdown: User initiated shutdown"
		}
		resp.Items = append(resp.Items, xmlStateChange{InstanceID: id,
			Current:  xmlState{Code: stateCodes[inst.state], Name: inst.state},
			Previous: xmlState{Code: stateCodes[prev], Name: prev}})
	}
	f.writeXML(w, http.StatusOK, resp)
}

func (i *fakeInstance) matches(filters map[string][]string) bool {
	for name, values := range filters {
		var have string
		switch {
		case strings.HasPrefix(name, "tag:"):
			v, ok := i.tags[strings.TrimPrefix(name, "tag:")]
			if !ok {
				return false
			}
			have = v
		case name == "instance-state-name":
			have = i.state
		case name == "client-token":
			have = i.clientToken
		default:
			return false // an unknown filter would be an error on EC2; fail loudly here
		}
		if !contains(values, have) {
			return false
		}
	}
	return true
}

func (i *fakeInstance) xml() xmlInstance {
	x := xmlInstance{
		InstanceID: i.id, ImageID: i.image, State: xmlState{Code: stateCodes[i.state], Name: i.state},
		InstanceType: i.instanceType, LaunchTime: i.launched.Format(time.RFC3339), SubnetID: i.subnet,
		PrivateIP: i.privateIP, ClientToken: i.clientToken,
	}
	if i.reason != "" {
		code, _, _ := strings.Cut(i.reason, ": ")
		x.StateReason = &xmlStateReason{Code: code, Message: i.reason}
	}
	keys := make([]string, 0, len(i.tags))
	for k := range i.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: i.tags[k]})
	}
	return x
}

func (f *fakeEC2) writeError(w http.ResponseWriter, e *fakeError) {
	f.writeXML(w, e.status, errorResponse{
		Errors:    []xmlError{{Code: e.code, Message: "fake: " + e.code}},
		RequestID: "req-error",
	})
}

func (f *fakeEC2) writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	if err := xml.NewEncoder(w).Encode(v); err != nil {
		f.t.Errorf("fake EC2: encode: %v", err)
	}
}

// indexed returns form values prefix.1, prefix.2, ...
func indexed(form url.Values, prefix string) []string {
	var out []string
	for n := 1; ; n++ {
		v, ok := form[fmt.Sprintf("%s.%d", prefix, n)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlInstance struct {
	InstanceID   string          `xml:"instanceId"`
	ImageID      string          `xml:"imageId"`
	State        xmlState        `xml:"instanceState"`
	InstanceType string          `xml:"instanceType"`
	LaunchTime   string          `xml:"launchTime"`
	SubnetID     string          `xml:"subnetId,omitempty"`
	PrivateIP    string          `xml:"privateIpAddress,omitempty"`
	ClientToken  string          `xml:"clientToken,omitempty"`
	StateReason  *xmlStateReason `xml:"stateReason,omitempty"`
	Tags         []xmlTag        `xml:"tagSet>item"`
}

type runResponse struct {
	XMLName       xml.Name      `xml:"RunInstancesResponse"`
	Xmlns         string        `xml:"xmlns,attr"`
	RequestID     string        `xml:"requestId"`
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type describeResponse struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	Xmlns        string           `xml:"xmlns,attr"`
	RequestID    string           `xml:"requestId"`
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type xmlStateChange struct {
	InstanceID string   `xml:"instanceId"`
	Current    xmlState `xml:"currentState"`
	Previous   xmlState `xml:"previousState"`
}

type terminateResponse struct {
	XMLName   xml.Name         `xml:"TerminateInstancesResponse"`
	Xmlns     string           `xml:"xmlns,attr"`
	RequestID string           `xml:"requestId"`
	Items     []xmlStateChange `xml:"instancesSet>item"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type errorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}
