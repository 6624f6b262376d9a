package danubetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/adminpb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/danubepb"
	"github.com/conduitio-labs/conduit-connector-danube/internal/pb/schemapb"
)

// maxTransportBytes lets grpc-go accept frames larger than the broker's limit,
// so the size interceptor can reject them with tonic's OUT_OF_RANGE status.
const maxTransportBytes = 64 << 20

// Broker is an in-process Danube broker. Create it with New and Close it when done.
type Broker struct {
	cfg config

	// mu guards every field of the broker state (see state.go).
	mu         sync.Mutex
	namespaces map[string]bool
	topics     map[string]*topic
	producers  map[uint64]*producer
	consumers  map[uint64]*consumer
	schemas    schemaRegistry
	// subSettings is the per-(topic, subscription) metadata the admin API
	// writes: failure policy and dispatch config.
	subSettings    map[subKey]*subSettings
	topicSchemaCfg map[string]topicSchemaConfig
	segErr         error // first failed automatic seal, reported by SealSegments
	closed         bool

	controls controls // own lock

	// url and adminURL are fixed once the first Start bound the ports.
	url, adminURL string

	// srvMu guards the listeners and servers; never taken while mu is held,
	// nor by RPC handlers (Stop waits for them while holding it).
	srvMu                 sync.Mutex
	clientAddr, adminAddr string
	clientSrv, adminSrv   *grpc.Server
	serveWG               sync.WaitGroup

	subWG sync.WaitGroup // dispatch goroutines
}

// New starts a broker on 127.0.0.1 (random ports unless WithAddr/WithAdminAddr).
func New(opts ...Option) (*Broker, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxUnacked < 1 || cfg.maxUnacked > 10000 {
		return nil, fmt.Errorf("danubetest: max unacked %d out of range 1..10000", cfg.maxUnacked)
	}
	if cfg.heartbeat <= 0 {
		return nil, fmt.Errorf("danubetest: heartbeat must be positive, got %s", cfg.heartbeat)
	}
	if cfg.liveBuffer < 0 {
		return nil, fmt.Errorf("danubetest: live buffer must be >= 0 (0: unbounded), got %d", cfg.liveBuffer)
	}
	if cfg.segmentSealEvery < 0 || (cfg.segmentSealEvery > 0 && cfg.segmentDir == "" && cfg.segmentStore == nil) {
		return nil, fmt.Errorf("danubetest: segment seal every %d needs a value >= 0 and WithSegmentDir", cfg.segmentSealEvery)
	}
	b := &Broker{
		cfg:            cfg,
		namespaces:     map[string]bool{"default": true, "system": true},
		topics:         map[string]*topic{},
		producers:      map[uint64]*producer{},
		consumers:      map[uint64]*consumer{},
		schemas:        newSchemaRegistry(),
		subSettings:    map[subKey]*subSettings{},
		topicSchemaCfg: map[string]topicSchemaConfig{},
		clientAddr:     cfg.addr,
		adminAddr:      cfg.adminAddr,
	}
	for _, ns := range cfg.namespaces {
		b.namespaces[ns] = true
	}
	// The broker creates its system topic at boot.
	b.topics["/system/_events_topic"] = newTopic("/system/_events_topic", false)
	if err := b.Start(); err != nil {
		return nil, err
	}
	b.url, b.adminURL = b.scheme()+b.clientAddr, b.scheme()+b.adminAddr
	return b, nil
}

func newTopic(name string, reliable bool) *topic {
	return &topic{name: name, reliable: reliable, producers: map[string]*producer{}, subs: map[string]*subscription{}}
}

func (b *Broker) scheme() string {
	if b.cfg.tlsConfig != nil {
		return "https://"
	}
	return "http://"
}

// URL is the client service URL, e.g. "http://127.0.0.1:6650".
func (b *Broker) URL() string { return b.url }

// AdminURL is the admin API URL (a separate listener, like the broker's 50051).
func (b *Broker) AdminURL() string { return b.adminURL }

// Start brings the listeners up again after Stop, on the same ports, with the
// state kept. Starting a running broker is a no-op.
func (b *Broker) Start() error {
	b.srvMu.Lock()
	defer b.srvMu.Unlock()
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return errors.New("danubetest: broker is closed")
	}
	if b.clientSrv != nil {
		return nil
	}
	clientLis, err := net.Listen("tcp", b.clientAddr)
	if err != nil {
		return fmt.Errorf("danubetest: listen on client address %s: %w", b.clientAddr, err)
	}
	adminLis, err := net.Listen("tcp", b.adminAddr)
	if err != nil {
		_ = clientLis.Close()
		return fmt.Errorf("danubetest: listen on admin address %s: %w", b.adminAddr, err)
	}
	b.clientAddr = clientLis.Addr().String()
	b.adminAddr = adminLis.Addr().String()

	b.clientSrv = grpc.NewServer(b.serverOptions()...)
	danubepb.RegisterProducerServiceServer(b.clientSrv, producerService{b: b})
	danubepb.RegisterConsumerServiceServer(b.clientSrv, consumerService{b: b})
	danubepb.RegisterDiscoveryServer(b.clientSrv, discoveryService{b: b})
	danubepb.RegisterHealthCheckServer(b.clientSrv, healthService{b: b})
	danubepb.RegisterStorageServiceServer(b.clientSrv, storageService{b: b})
	schemapb.RegisterSchemaRegistryServer(b.clientSrv, schemaService{b: b})

	b.adminSrv = grpc.NewServer(b.serverOptions()...)
	adminpb.RegisterNamespaceAdminServer(b.adminSrv, namespaceAdmin{b: b})
	adminpb.RegisterTopicAdminServer(b.adminSrv, topicAdmin{b: b})

	for srv, lis := range map[*grpc.Server]net.Listener{b.clientSrv: clientLis, b.adminSrv: adminLis} {
		b.serveWG.Add(1)
		go func() {
			defer b.serveWG.Done()
			_ = srv.Serve(lis) // returns when the server stops
		}()
	}
	return nil
}

func (b *Broker) serverOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxTransportBytes),
		grpc.WaitForHandlers(true),
		// The real broker (tonic/hyper) never answers client keepalive pings with
		// "too_many_pings"; grpc-go's default policy would, cutting idle consumers.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(b.authUnary, b.controlUnary, sizeLimitUnary),
		grpc.ChainStreamInterceptor(b.authStream, b.controlStream),
	}
	if b.cfg.tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(b.cfg.tlsConfig)))
	}
	return opts
}

// Stop takes both listeners down (clients see UNAVAILABLE) and keeps all state.
// Live streams end, so their consumers become inactive as on a network cut.
func (b *Broker) Stop() {
	b.srvMu.Lock()
	defer b.srvMu.Unlock()
	b.stopServersLocked()
}

func (b *Broker) stopServersLocked() {
	if b.clientSrv == nil {
		return
	}
	b.clientSrv.Stop()
	b.adminSrv.Stop()
	b.serveWG.Wait()
	b.clientSrv, b.adminSrv = nil, nil
}

// Close stops the broker for good and waits for all its goroutines.
func (b *Broker) Close() {
	b.srvMu.Lock()
	defer b.srvMu.Unlock()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.stopServersLocked()
	b.mu.Lock()
	for _, t := range b.topics {
		for _, s := range t.subs {
			s.stop()
		}
	}
	b.mu.Unlock()
	b.subWG.Wait()
}

// newIDLocked returns a fresh random non-zero id, as the broker's get_random_id.
func (b *Broker) newIDLocked() uint64 {
	for {
		id := rand.Uint64() //nolint:gosec // ids need no cryptographic strength
		if id == 0 {
			continue
		}
		if _, used := b.producers[id]; used {
			continue
		}
		if _, used := b.consumers[id]; used {
			continue
		}
		return id
	}
}
