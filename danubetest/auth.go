package danubetest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// jwtLeeway is the clock skew jsonwebtoken's default Validation allows on exp.
const jwtLeeway = 60 * time.Second

// Claims are the broker's JWT claims (danube-core/src/jwt.rs); all are required.
type Claims struct {
	Iss           string `json:"iss"`
	Exp           uint64 `json:"exp"`
	Sub           string `json:"sub"`
	PrincipalType string `json:"principal_type"`
	PrincipalName string `json:"principal_name"`
}

// SignToken mints an HS256 JWT the broker (and this test broker with
// WithJWT(secret)) accepts, for a service account named subject, valid for ttl.
func SignToken(secret []byte, subject string, ttl time.Duration) (string, error) {
	return SignClaims(secret, Claims{
		Iss:           "danube-auth",
		Exp:           uint64(time.Now().Add(ttl).Unix()),
		Sub:           subject,
		PrincipalType: "service_account",
		PrincipalName: subject,
	})
}

// SignClaims mints an HS256 JWT with the given claims.
func SignClaims(secret []byte, c Claims) (string, error) {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256"}`))
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	signing := header + "." + base64.RawURLEncoding.EncodeToString(body)
	return signing + "." + base64.RawURLEncoding.EncodeToString(hs256(secret, signing)), nil
}

func hs256(secret []byte, s string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return m.Sum(nil)
}

var errInvalidToken = errors.New("invalid token")

// verifyToken checks an HS256 JWT the way jsonwebtoken's default Validation
// does: algorithm HS256, valid signature, all claims present, exp not past
// (with 60s leeway).
func verifyToken(secret []byte, token string, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errInvalidToken
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "HS256" {
		return errInvalidToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, hs256(secret, parts[0]+"."+parts[1])) {
		return errInvalidToken
	}
	var raw map[string]json.RawMessage
	if err := decodeSegment(parts[1], &raw); err != nil {
		return errInvalidToken
	}
	for _, k := range []string{"iss", "exp", "sub", "principal_type", "principal_name"} {
		if _, ok := raw[k]; !ok {
			return errInvalidToken
		}
	}
	var c Claims
	if err := decodeSegment(parts[1], &c); err != nil {
		return errInvalidToken
	}
	if int64(c.Exp) < now.Add(-jwtLeeway).Unix() {
		return errInvalidToken
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("decode segment: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode segment: %w", err)
	}
	return nil
}

// authenticate is the broker's authenticate_request for auth mode "tls":
// UNAUTHENTICATED "Authentication credentials are missing" or "Invalid
// token"; the scheme "Bearer " or "bearer ".
//
// Differs from the broker: no RBAC (any valid token may do anything), no
// 30 s validation cache, no x-danube-internal-broker identities.
func (b *Broker) authenticate(ctx context.Context) error {
	if b.cfg.jwtSecret == nil {
		return nil // auth mode none: credentials are ignored
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return status.Errorf(codes.Unauthenticated, "Authentication credentials are missing")
	}
	token, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(vals[0], "bearer ")
	}
	if !ok {
		return status.Errorf(codes.Unauthenticated, "Invalid token")
	}
	if err := verifyToken(b.cfg.jwtSecret, token, time.Now()); err != nil {
		return status.Errorf(codes.Unauthenticated, "Invalid token")
	}
	return nil
}

func (b *Broker) authUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := b.authenticate(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (b *Broker) authStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := b.authenticate(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}
