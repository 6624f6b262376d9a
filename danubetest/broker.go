package danubetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
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

// Broker is an in-process Danube broker: a standalone one (New), or one
// broker of a Cluster (NewCluster). Close it when done.
type Broker struct {
	// brokerState is what every broker of a cluster shares, as the real
	// brokers share their Raft metadata (see state.go); a standalone broker
	// has it to itself.
	*brokerState

	node int    // index in brokerState.brokers
	id   string // broker_id, as DescribeTopic reports it

	// producers and consumers registered on this broker (guarded by mu): as
	// the real broker's registries, they are per broker, so another broker
	// of the cluster answers NOT_FOUND or CLOSE for their ids.
	producers map[uint64]*producer
	consumers map[uint64]*consumer

	controls controls // own lock

	// url and adminURL are fixed once the first Start bound the ports.
	url, adminURL string

	// srvMu guards the listeners and servers; never taken while mu is held,
	// nor by RPC handlers (Stop waits for them while holding it).
	srvMu                 sync.Mutex
	clientAddr, adminAddr string
	clientSrv, adminSrv   *grpc.Server
	serveWG               sync.WaitGroup
}

// brokerState is the state the brokers of one cluster share.
type brokerState struct {
	cfg config

	// mu guards every field of the broker state (see state.go), and each
	// broker's producers and consumers.
	mu         sync.Mutex
	namespaces map[string]bool
	topics     map[string]*topic
	schemas    schemaRegistry
	// subSettings is the per-(topic, subscription) metadata the admin API
	// writes: failure policy and dispatch config.
	subSettings    map[subKey]*subSettings
	topicSchemaCfg map[string]topicSchemaConfig
	segErr         error // first failed automatic seal, reported by SealSegments
	closed         bool

	// brokers are the members, one for a standalone broker. clustered says
	// the brokers run in cluster mode (NewCluster): topics are assigned to
	// one of them and the others redirect (cluster.go).
	brokers      []*Broker
	clustered    bool
	lastAssigned int // the broker chosen last for a new topic

	subWG sync.WaitGroup // dispatch goroutines
}

// New starts a broker on 127.0.0.1 (random ports unless WithAddr/WithAdminAddr).
func New(opts ...Option) (*Broker, error) {
	st, err := newBrokerState(opts)
	if err != nil {
		return nil, err
	}
	b := st.addBroker(st.cfg.addr, st.cfg.adminAddr)
	st.topics[systemTopic].owner = b
	if err := b.Start(); err != nil {
		return nil, err
	}
	b.url, b.adminURL = b.scheme()+b.clientAddr, b.scheme()+b.adminAddr
	return b, nil
}

// systemTopic is the topic the broker creates at boot.
const systemTopic = "/system/_events_topic"

func newBrokerState(opts []Option) (*brokerState, error) {
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
	st := &brokerState{
		cfg:            cfg,
		namespaces:     map[string]bool{"default": true, "system": true},
		topics:         map[string]*topic{},
		schemas:        newSchemaRegistry(),
		subSettings:    map[subKey]*subSettings{},
		topicSchemaCfg: map[string]topicSchemaConfig{},
		lastAssigned:   -1,
	}
	for _, ns := range cfg.namespaces {
		st.namespaces[ns] = true
	}
	// The broker creates its system topic at boot.
	st.topics[systemTopic] = newTopic(systemTopic, false)
	return st, nil
}

// addBroker adds a member that will listen on the given addresses.
func (st *brokerState) addBroker(addr, adminAddr string) *Broker {
	b := &Broker{
		brokerState: st,
		node:        len(st.brokers),
		id:          strconv.Itoa(len(st.brokers) + 1),
		producers:   map[uint64]*producer{},
		consumers:   map[uint64]*consumer{},
		clientAddr:  addr,
		adminAddr:   adminAddr,
	}
	st.brokers = append(st.brokers, b)
	return b
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
	adminpb.RegisterBrokerAdminServer(b.adminSrv, brokerAdmin{b: b})
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

// Close stops the broker for good and waits for all its goroutines. On a
// broker of a Cluster it closes the whole cluster.
func (b *Broker) Close() { b.close() }

func (st *brokerState) close() {
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	for _, b := range st.brokers {
		b.srvMu.Lock()
		b.stopServersLocked()
		b.srvMu.Unlock()
	}
	st.mu.Lock()
	for _, t := range st.topics {
		for _, s := range t.subs {
			s.stop()
		}
	}
	st.mu.Unlock()
	st.subWG.Wait()
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
