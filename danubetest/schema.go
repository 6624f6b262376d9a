package danubetest

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

// schemaRegistry is a minimal subject → versions store. Guarded by Broker.mu.
type schemaRegistry struct {
	subjects map[string]*schemaSubject
	nextID   uint64
}

type schemaSubject struct {
	id            uint64 // one id per subject, as the broker's metadata.id
	name          string
	compatibility string
	versions      []*schemaVersion
}

type schemaVersion struct {
	id          uint64
	version     uint32
	def         schemaDefinition
	fingerprint string
	description string
	createdBy   string
	createdAt   uint64
	tags        []string
}

type topicSchemaConfig struct {
	subject          string // set by ConfigureTopicSchema; a reloaded topic gets it back
	validationPolicy string
	validatePayload  bool
}

func newSchemaRegistry() schemaRegistry {
	return schemaRegistry{subjects: map[string]*schemaSubject{}, nextID: 1}
}

func (r *schemaRegistry) latest(subject string) *schemaVersion {
	s := r.subjects[subject]
	if s == nil || len(s.versions) == 0 {
		return nil
	}
	return s.versions[len(s.versions)-1]
}

// checkTopicSchemaLocked validates a producer's schema_ref on a loaded topic
// (broker_service.rs validate_local_topic): the first producer naming a
// subject assigns it (it must be registered); another subject later is
// refused.
func (b *Broker) checkTopicSchemaLocked(t *topic, ref *danubepb.SchemaReference) error {
	if ref == nil {
		return nil
	}
	if t.schemaSubject != "" {
		if t.schemaSubject != ref.GetSubject() {
			return status.Errorf(codes.FailedPrecondition, "Topic '%s' uses schema subject '%s', cannot use '%s'. Only admin can change topic schema.",
				t.name, t.schemaSubject, ref.GetSubject())
		}
		return nil
	}
	return b.assignSchemaLocked(t, ref.GetSubject())
}

func (b *Broker) assignSchemaLocked(t *topic, subject string) error {
	if b.schemas.latest(subject) == nil {
		return status.Errorf(codes.FailedPrecondition, "Failed to assign schema '%s' to topic '%s': Schema subject '%s' not found. Ensure schema is registered first.",
			subject, t.name, subject)
	}
	t.schemaSubject = subject
	return nil
}

type schemaService struct {
	schemapb.UnimplementedSchemaRegistryServer
	b *Broker
}

// RegisterSchema adds a version to a subject (registry.rs register_schema):
// the definition is parsed for its type, a definition with the fingerprint of
// an existing version returns that version with is_new_version=false, and a
// new version must be compatible with the latest under the subject's mode.
// Every refusal is INTERNAL "Failed to register schema: …". Types take the
// aliases of SchemaType::from_str ("json" is json_schema); fingerprints are
// "sha256:<hex>" of the canonical definition (JSON compact with sorted keys,
// Protobuf its raw text, bytes/string/number the type name); schema ids come
// from one counter, one id per subject.
//
// Differs from the broker: definitions are checked for their top-level shape
// only (JSON Schema an object or boolean with a known type; Avro a type name,
// union or object with a type), not by the jsonschema and apache_avro
// parsers, so texts after "Failed to register schema: " may differ; Avro
// fingerprints hash the compact key-sorted JSON, not Avro's canonical form,
// and Avro compatibility is not evaluated (always compatible); JSON numbers
// spelled like 1e2 may canonicalise differently.
func (s schemaService) RegisterSchema(_ context.Context, req *schemapb.RegisterSchemaRequest) (*schemapb.RegisterSchemaResponse, error) {
	def, err := parseSchemaDefinition(req.GetSchemaType(), req.GetSchemaDefinition())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "Failed to register schema: %v", err)
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	subj := b.schemas.subjects[req.GetSubject()]
	if subj == nil {
		subj = &schemaSubject{id: b.schemas.nextID, name: req.GetSubject(), compatibility: "backward"}
		b.schemas.nextID++
		b.schemas.subjects[subj.name] = subj
	}
	for _, v := range subj.versions {
		if v.fingerprint == def.fingerprint {
			return &schemapb.RegisterSchemaResponse{SchemaId: subj.id, Version: v.version, Fingerprint: v.fingerprint}, nil
		}
	}
	if latest := b.schemas.latest(subj.name); latest != nil {
		if errs := compatibilityErrors(latest.def, def, subj.compatibility); len(errs) > 0 {
			return nil, status.Errorf(codes.Internal, "Failed to register schema: Schema is not compatible with subject '%s' (mode: %s): %s",
				subj.name, modeDebug(subj.compatibility), strings.Join(errs, "; "))
		}
	}
	var next uint32 = 1
	if n := len(subj.versions); n > 0 {
		next = subj.versions[n-1].version + 1
	}
	v := &schemaVersion{
		id:          subj.id,
		version:     next,
		def:         def,
		fingerprint: def.fingerprint,
		description: req.GetDescription(),
		createdBy:   req.GetCreatedBy(),
		createdAt:   uint64(b.cfg.now().Unix()),
		tags:        append([]string(nil), req.GetTags()...),
	}
	subj.versions = append(subj.versions, v)
	return &schemapb.RegisterSchemaResponse{SchemaId: subj.id, Version: v.version, IsNewVersion: true, Fingerprint: v.fingerprint}, nil
}

// modeDebug is CompatibilityMode's Rust Debug form ("Backward").
func modeDebug(mode string) string {
	if mode == "" {
		return mode
	}
	return strings.ToUpper(mode[:1]) + mode[1:]
}

func schemaResponse(subj *schemaSubject, v *schemaVersion) *schemapb.GetSchemaResponse {
	return &schemapb.GetSchemaResponse{
		SchemaId:          subj.id,
		Version:           v.version,
		Subject:           subj.name,
		SchemaType:        string(v.def.kind),
		SchemaDefinition:  v.def.wire(),
		Description:       v.description,
		CreatedAt:         v.createdAt,
		CreatedBy:         v.createdBy,
		Tags:              v.tags,
		Fingerprint:       v.fingerprint,
		CompatibilityMode: subj.compatibility,
	}
}

// GetSchema finds a subject by id, at a version or the latest, and returns
// the broker's serialised internal form, e.g. {"JsonSchema":{"raw_schema":…,
// "fingerprint":…}}, {"Avro":{…}}, "String".
func (s schemaService) GetSchema(_ context.Context, req *schemapb.GetSchemaRequest) (*schemapb.GetSchemaResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, subj := range b.schemas.subjects {
		if subj.id != req.GetSchemaId() || len(subj.versions) == 0 {
			continue
		}
		if req.Version == nil {
			return schemaResponse(subj, subj.versions[len(subj.versions)-1]), nil
		}
		for _, v := range subj.versions {
			if v.version == req.GetVersion() {
				return schemaResponse(subj, v), nil
			}
		}
	}
	return nil, status.Errorf(codes.NotFound, "Schema not found for ID: %d", req.GetSchemaId())
}

// GetLatestSchema returns a subject's latest version.
func (s schemaService) GetLatestSchema(_ context.Context, req *schemapb.GetLatestSchemaRequest) (*schemapb.GetSchemaResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.schemas.latest(req.GetSubject())
	if v == nil {
		return nil, status.Errorf(codes.NotFound, "Schema not found for subject: %s", req.GetSubject())
	}
	return schemaResponse(b.schemas.subjects[req.GetSubject()], v), nil
}

// ListVersions lists a subject's versions in order.
func (s schemaService) ListVersions(_ context.Context, req *schemapb.ListVersionsRequest) (*schemapb.ListVersionsResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	subj := b.schemas.subjects[req.GetSubject()]
	if subj == nil {
		return nil, status.Errorf(codes.NotFound, "Subject not found: %s", req.GetSubject())
	}
	out := &schemapb.ListVersionsResponse{}
	for _, v := range subj.versions {
		out.Versions = append(out.Versions, &schemapb.SchemaVersionInfo{
			Version: v.version, CreatedAt: v.createdAt, CreatedBy: v.createdBy,
			Description: v.description, Fingerprint: v.fingerprint, SchemaId: subj.id,
		})
	}
	return out, nil
}

// ListSubjects lists every subject with its latest version, sorted by name.
func (s schemaService) ListSubjects(context.Context, *schemapb.ListSubjectsRequest) (*schemapb.ListSubjectsResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	out := &schemapb.ListSubjectsResponse{}
	for _, subj := range b.schemas.subjects {
		v := b.schemas.latest(subj.name)
		if v == nil {
			continue
		}
		out.Subjects = append(out.Subjects, &schemapb.SubjectSummary{
			Subject: subj.name, SchemaType: string(v.def.kind), LatestVersion: v.version,
			CompatibilityMode: subj.compatibility, SchemaId: subj.id, Tags: v.tags,
		})
	}
	sort.Slice(out.Subjects, func(i, j int) bool { return out.Subjects[i].Subject < out.Subjects[j].Subject })
	return out, nil
}

// CheckCompatibility checks a definition against the subject's latest
// version, under the requested mode or else the subject's own
// (registry.rs check_compatibility).
func (s schemaService) CheckCompatibility(_ context.Context, req *schemapb.CheckCompatibilityRequest) (*schemapb.CheckCompatibilityResponse, error) {
	def, err := parseSchemaDefinition(req.GetSchemaType(), req.GetNewSchemaDefinition())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "Failed to check compatibility: %v", err)
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	subj := b.schemas.subjects[req.GetSubject()]
	if subj == nil {
		return nil, status.Errorf(codes.Internal, "Failed to check compatibility: Subject not found: %s", req.GetSubject())
	}
	mode := subj.compatibility
	if m, ok := compatibilityModeOf(req.GetCompatibilityMode()); ok {
		mode = m
	}
	if mode == "none" {
		return &schemapb.CheckCompatibilityResponse{IsCompatible: true}, nil
	}
	latest := b.schemas.latest(subj.name)
	if latest == nil {
		return nil, status.Errorf(codes.Internal, "Failed to check compatibility: No existing versions found")
	}
	errs := compatibilityErrors(latest.def, def, mode)
	return &schemapb.CheckCompatibilityResponse{IsCompatible: len(errs) == 0, Errors: errs}, nil
}

// compatibilityModeOf parses a mode case-insensitively (CompatibilityMode::from_str).
func compatibilityModeOf(mode string) (string, bool) {
	switch m := strings.ToLower(mode); m {
	case "none", "backward", "forward", "full":
		return m, true
	}
	return "", false
}

// SetCompatibilityMode records the mode of an existing subject, in any case
// (else INVALID_ARGUMENT), reported in lowercase; "backward" by default.
func (s schemaService) SetCompatibilityMode(_ context.Context, req *schemapb.SetCompatibilityModeRequest) (*schemapb.SetCompatibilityModeResponse, error) {
	mode, ok := compatibilityModeOf(req.GetCompatibilityMode())
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid compatibility mode: %s", req.GetCompatibilityMode())
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	subj := b.schemas.subjects[req.GetSubject()]
	if subj == nil {
		return nil, status.Errorf(codes.Internal, "Failed to set compatibility mode: Subject not found: %s", req.GetSubject())
	}
	subj.compatibility = mode
	return &schemapb.SetCompatibilityModeResponse{
		Success: true,
		Message: fmt.Sprintf("Set compatibility mode to %s for subject %s", req.GetCompatibilityMode(), req.GetSubject()),
	}, nil
}

// DeleteSchemaVersion removes one version of a subject.
func (s schemaService) DeleteSchemaVersion(_ context.Context, req *schemapb.DeleteSchemaVersionRequest) (*schemapb.DeleteSchemaVersionResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	subj := b.schemas.subjects[req.GetSubject()]
	if subj != nil {
		for i, v := range subj.versions {
			if v.version == req.GetVersion() {
				subj.versions = append(subj.versions[:i], subj.versions[i+1:]...)
				return &schemapb.DeleteSchemaVersionResponse{Success: true}, nil
			}
		}
	}
	return nil, status.Errorf(codes.NotFound, "Version %d not found for subject: %s", req.GetVersion(), req.GetSubject())
}

// ConfigureTopicSchema sets a topic's subject and validation settings (admin
// path). A loaded topic enforces only this subject (topic_control.rs
// ensure_local); it survives a Restart, where producer-assigned subjects do
// not.
func (s schemaService) ConfigureTopicSchema(_ context.Context, req *schemapb.ConfigureTopicSchemaRequest) (*schemapb.ConfigureTopicSchemaResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[req.GetTopicName()]
	if t == nil || t.owner != b {
		return nil, errTopicNotOnBroker(req.GetTopicName())
	}
	if err := b.assignSchemaLocked(t, req.GetSchemaSubject()); err != nil {
		return nil, err
	}
	b.topicSchemaCfg[t.name] = topicSchemaConfig{
		subject: t.schemaSubject, validationPolicy: req.GetValidationPolicy(), validatePayload: req.GetEnablePayloadValidation(),
	}
	return &schemapb.ConfigureTopicSchemaResponse{Success: true}, nil
}

// UpdateTopicValidationPolicy records the policy.
//
// Differs from the broker: payloads are never validated against it.
func (s schemaService) UpdateTopicValidationPolicy(_ context.Context, req *schemapb.UpdateTopicValidationPolicyRequest) (*schemapb.UpdateTopicValidationPolicyResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.topics[req.GetTopicName()]; t == nil || t.owner != b {
		return nil, errTopicNotOnBroker(req.GetTopicName())
	}
	cfg := b.topicSchemaCfg[req.GetTopicName()]
	cfg.validationPolicy, cfg.validatePayload = req.GetValidationPolicy(), req.GetEnablePayloadValidation()
	b.topicSchemaCfg[req.GetTopicName()] = cfg
	return &schemapb.UpdateTopicValidationPolicyResponse{Success: true}, nil
}

// GetTopicSchemaConfig reports a topic's subject and validation settings.
func (s schemaService) GetTopicSchemaConfig(_ context.Context, req *schemapb.GetTopicSchemaConfigRequest) (*schemapb.GetTopicSchemaConfigResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[req.GetTopicName()]
	if t == nil || t.owner != b {
		return nil, errTopicNotOnBroker(req.GetTopicName())
	}
	cfg := b.topicSchemaCfg[t.name]
	out := &schemapb.GetTopicSchemaConfigResponse{
		SchemaSubject: t.schemaSubject, ValidationPolicy: cfg.validationPolicy, EnablePayloadValidation: cfg.validatePayload,
	}
	if subj := b.schemas.subjects[t.schemaSubject]; subj != nil {
		out.SchemaId = subj.id
	}
	return out, nil
}
