package danubeclient

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors: every error the client returns names what failed and wraps one of
// these (errors.Is) or the gRPC status.
var (
	ErrClosed            = errors.New("danube: closed")
	ErrTopicNotFound     = errors.New("danube: topic not found")
	ErrNamespaceNotFound = errors.New("danube: namespace not found")
	ErrMessageTooLarge   = errors.New("danube: message too large (limit 4 MiB)")
	ErrSubscriptionTaken = errors.New("danube: exclusive subscription held by another consumer")
	ErrUnauthenticated   = errors.New("danube: authentication failed")
	ErrPredecessorFailed = errors.New("danube: an earlier message on the same ordering lane failed")
	ErrInvalidTopic      = errors.New("danube: invalid topic name")
	ErrStrategyMismatch  = errors.New("danube: topic exists with another dispatch strategy")
	ErrBrokerUnreachable = errors.New("danube: broker unreachable")
	// ErrAlreadyExists reports an admin call that found the topic already there.
	ErrAlreadyExists = errors.New("danube: already exists")
	// ErrTopicMoved reports that the brokers kept answering that another
	// broker serves the topic (or that the cluster had not yet assigned it)
	// until the retry policy ran out.
	ErrTopicMoved = errors.New("danube: the topic is served by another broker")
)

// IsTransient reports whether err is worth retrying (UNAVAILABLE,
// DEADLINE_EXCEEDED from the broker, RESOURCE_EXHAUSTED, and the broker's own
// timeout of a call, see brokerTimedOut). A missing namespace, which the
// broker reports as UNAVAILABLE, is not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrNamespaceNotFound) {
		return false
	}
	if errors.Is(err, ErrBrokerUnreachable) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	//exhaustive:ignore // only these codes are transient
	switch st.Code() {
	case codes.Unavailable:
		return !isNamespaceMissing(st)
	case codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	case codes.Canceled:
		return brokerTimedOut(st)
	default:
		return false
	}
}

// brokerTimedOut reports the broker's answer to a call that outlived the
// deadline the client sent with it: its gRPC server (tonic) ends the call
// with CANCELLED "Timeout expired" where grpc-go would say
// DEADLINE_EXCEEDED, so it is retried the same way. (A v0.15.1 broker can
// also hold every Subscribe of a consumer name that takes over from another
// connection for good, consumer_handler.rs waiting for the old session's
// lock: then the retries end with this error.)
func brokerTimedOut(st *status.Status) bool {
	return st.Code() == codes.Canceled && st.Message() == "Timeout expired"
}

func isNamespaceMissing(st *status.Status) bool {
	return st.Code() == codes.Unavailable && strings.Contains(st.Message(), "Unable to find the namespace")
}

// redoLookup reports the broker's answers to a call that reached a broker
// not serving the topic: look the topic up again and retry at its owner. In
// cluster mode a broker answers UNAVAILABLE "…served by another broker, redo
// the Lookup request" when another broker owns the topic and "…need to redo
// the lookup…" after a producer created it (broker_service.rs get_topic). A
// topic that is unloaded (moved) while calls are under way gives
// PERMISSION_DENIED "Unable to publish the message: Topic … is draining or
// closed; retry lookup/moved" or "…Topic … not found in registry" (send,
// subscribe), "Not able to create the Producer: Unable to find the topic"
// (create), and INTERNAL "Error acknowledging message: Topic … not found in
// registry" (ack, nack; topic_registry.rs). A topic that came back to a
// broker that served it before has no subscription there until the consumer
// subscribes again: acks get INTERNAL "…: Subscription not found".
func redoLookup(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	msg := st.Message()
	//exhaustive:ignore // only these codes carry a redirect
	switch st.Code() {
	case codes.Unavailable:
		return strings.Contains(strings.ToLower(msg), "redo the lookup")
	case codes.PermissionDenied:
		return strings.Contains(msg, "retry lookup/moved") || strings.Contains(msg, "not found in registry") ||
			strings.Contains(msg, "Not able to create the Producer: Unable to find the topic")
	case codes.Internal:
		return strings.Contains(msg, "not found in registry") || strings.Contains(msg, "Subscription not found")
	default:
		return false
	}
}

// movedError is the error once the retries ran out while brokers kept
// answering that they do not serve the topic: it names the broker that
// answered last and what to check.
func movedError(what string, r *route, err error) error {
	return fmt.Errorf("%s: the broker at %s still answers that it does not serve the topic after every retry: "+
		"check that each broker's advertised address is reachable from this host and that the cluster has "+
		"assigned the topic to a broker (danube-admin topics describe), or allow more retries: %w: %w",
		what, r.connectURL, ErrTopicMoved, err)
}

// firstOf reports the first of the per-partition errors and how many
// partitions failed, rather than one long line per partition.
func firstOf(errs []error) error {
	var first error
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 1 {
		return fmt.Errorf("%w (%d of %d partitions failed)", first, failed, len(errs))
	}
	return first
}

// isProducerGone reports the broker's answer to a send on a producer it does
// not know (it restarted or unloaded the topic): re-creating the producer heals it.
func isProducerGone(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.NotFound && strings.Contains(st.Message(), "does not exist")
}

// classify wraps a broker error with the sentinel its status maps to and a
// hint for the user. what names the operation and the object it was about.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := st.Message()
	//exhaustive:ignore // codes without a sentinel are returned wrapped as they are
	switch st.Code() {
	case codes.Unavailable:
		if isNamespaceMissing(st) {
			return fmt.Errorf("%s: the namespace does not exist: create it with the admin API "+
				"(CreateNamespace) first: %w: %w", what, ErrNamespaceNotFound, err)
		}
	case codes.OutOfRange:
		return fmt.Errorf("%s: the broker refused the message as too large (%d bytes at most): %w: %w",
			what, MaxMessageSize, ErrMessageTooLarge, err)
	case codes.Unauthenticated:
		return fmt.Errorf("%s: check the token (it must be a valid, unexpired JWT for this broker): %w: %w",
			what, ErrUnauthenticated, err)
	case codes.PermissionDenied:
		if strings.Contains(msg, "Exclusive") || strings.Contains(msg, "can't be shared") {
			return fmt.Errorf("%s: another consumer holds the exclusive subscription: use the same consumer "+
				"name as before, or remove the subscription with the admin API (Unsubscribe): %w: %w",
				what, ErrSubscriptionTaken, err)
		}
	case codes.FailedPrecondition:
		if strings.Contains(msg, "dispatch strategy") {
			return fmt.Errorf("%s: the topic exists with the other dispatch strategy (reliable vs non-reliable): "+
				"use the topic's strategy or another topic: %w: %w", what, ErrStrategyMismatch, err)
		}
	case codes.InvalidArgument:
		if strings.Contains(msg, "invalid format") {
			return fmt.Errorf("%s: %w: %w", what, ErrInvalidTopic, err)
		}
	case codes.NotFound:
		if strings.Contains(msg, "find the topic") || strings.Contains(msg, "find the requested topic") {
			return fmt.Errorf("%s: %w: %w", what, ErrTopicNotFound, err)
		}
	case codes.AlreadyExists:
		return fmt.Errorf("%s: %w: %w", what, ErrAlreadyExists, err)
	default:
	}
	return fmt.Errorf("%s: %w", what, err)
}
