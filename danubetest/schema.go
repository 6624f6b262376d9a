package danubetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	schemaType  string
	definition  []byte
	fingerprint string
	description string
	createdBy   string
	createdAt   uint64
	tags        []string
}

type topicSchemaConfig struct {
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

// checkTopicSchemaLocked: the first producer with a schema_ref assigns the
// subject to the topic; a different subject later is refused.
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

// RegisterSchema adds a version to a subject; an identical definition returns
// the existing version with is_new_version=false. No compatibility check.
func (s schemaService) RegisterSchema(_ context.Context, req *schemapb.RegisterSchemaRequest) (*schemapb.RegisterSchemaResponse, error) {
	if strings.TrimSpace(req.GetSubject()) == "" {
		return nil, status.Errorf(codes.Internal, "Failed to register schema: subject must not be empty")
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	sum := sha256.Sum256(req.GetSchemaDefinition())
	fp := hex.EncodeToString(sum[:])
	subj := b.schemas.subjects[req.GetSubject()]
	if subj == nil {
		subj = &schemaSubject{id: b.schemas.nextID, name: req.GetSubject(), compatibility: "Backward"}
		b.schemas.nextID++
		b.schemas.subjects[subj.name] = subj
	}
	for _, v := range subj.versions {
		if v.schemaType == req.GetSchemaType() && bytes.Equal(v.definition, req.GetSchemaDefinition()) {
			return &schemapb.RegisterSchemaResponse{SchemaId: subj.id, Version: v.version, Fingerprint: v.fingerprint}, nil
		}
	}
	var next uint32 = 1
	if n := len(subj.versions); n > 0 {
		next = subj.versions[n-1].version + 1
	}
	v := &schemaVersion{
		id:          subj.id,
		version:     next,
		schemaType:  req.GetSchemaType(),
		definition:  append([]byte(nil), req.GetSchemaDefinition()...),
		fingerprint: fp,
		description: req.GetDescription(),
		createdBy:   req.GetCreatedBy(),
		createdAt:   uint64(b.cfg.now().Unix()),
		tags:        append([]string(nil), req.GetTags()...),
	}
	subj.versions = append(subj.versions, v)
	return &schemapb.RegisterSchemaResponse{SchemaId: subj.id, Version: v.version, IsNewVersion: true, Fingerprint: fp}, nil
}

func schemaResponse(subj *schemaSubject, v *schemaVersion) *schemapb.GetSchemaResponse {
	return &schemapb.GetSchemaResponse{
		SchemaId:          subj.id,
		Version:           v.version,
		Subject:           subj.name,
		SchemaType:        v.schemaType,
		SchemaDefinition:  v.definition,
		Description:       v.description,
		CreatedAt:         v.createdAt,
		CreatedBy:         v.createdBy,
		Tags:              v.tags,
		Fingerprint:       v.fingerprint,
		CompatibilityMode: subj.compatibility,
	}
}

// GetSchema finds a subject by id, at a version or the latest.
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
			Subject: subj.name, SchemaType: v.schemaType, LatestVersion: v.version,
			CompatibilityMode: subj.compatibility, SchemaId: subj.id, Tags: v.tags,
		})
	}
	sort.Slice(out.Subjects, func(i, j int) bool { return out.Subjects[i].Subject < out.Subjects[j].Subject })
	return out, nil
}

// CheckCompatibility always reports compatible: the test broker does not
// evaluate schema evolution rules.
func (s schemaService) CheckCompatibility(context.Context, *schemapb.CheckCompatibilityRequest) (*schemapb.CheckCompatibilityResponse, error) {
	return &schemapb.CheckCompatibilityResponse{IsCompatible: true}, nil
}

// SetCompatibilityMode records the mode of an existing subject.
func (s schemaService) SetCompatibilityMode(_ context.Context, req *schemapb.SetCompatibilityModeRequest) (*schemapb.SetCompatibilityModeResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	subj := b.schemas.subjects[req.GetSubject()]
	if subj == nil {
		return nil, status.Errorf(codes.NotFound, "Subject not found: %s", req.GetSubject())
	}
	subj.compatibility = req.GetCompatibilityMode()
	return &schemapb.SetCompatibilityModeResponse{Success: true}, nil
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

// ConfigureTopicSchema sets a topic's subject and validation settings (admin path).
func (s schemaService) ConfigureTopicSchema(_ context.Context, req *schemapb.ConfigureTopicSchemaRequest) (*schemapb.ConfigureTopicSchemaResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[req.GetTopicName()]
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "Topic not found: %s", req.GetTopicName())
	}
	if err := b.assignSchemaLocked(t, req.GetSchemaSubject()); err != nil {
		return nil, err
	}
	b.topicSchemaCfg[t.name] = topicSchemaConfig{validationPolicy: req.GetValidationPolicy(), validatePayload: req.GetEnablePayloadValidation()}
	return &schemapb.ConfigureTopicSchemaResponse{Success: true}, nil
}

// UpdateTopicValidationPolicy records the policy; payloads are not validated.
func (s schemaService) UpdateTopicValidationPolicy(_ context.Context, req *schemapb.UpdateTopicValidationPolicyRequest) (*schemapb.UpdateTopicValidationPolicyResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.topics[req.GetTopicName()] == nil {
		return nil, status.Errorf(codes.NotFound, "Topic not found: %s", req.GetTopicName())
	}
	b.topicSchemaCfg[req.GetTopicName()] = topicSchemaConfig{validationPolicy: req.GetValidationPolicy(), validatePayload: req.GetEnablePayloadValidation()}
	return &schemapb.UpdateTopicValidationPolicyResponse{Success: true}, nil
}

// GetTopicSchemaConfig reports a topic's subject and validation settings.
func (s schemaService) GetTopicSchemaConfig(_ context.Context, req *schemapb.GetTopicSchemaConfigRequest) (*schemapb.GetTopicSchemaConfigResponse, error) {
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[req.GetTopicName()]
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "Topic not found: %s", req.GetTopicName())
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
