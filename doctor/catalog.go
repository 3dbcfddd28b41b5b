package doctor

// The finding catalog: every finding id the doctor can report, declared once
// with its layer, the severities checks give it, what it means (the line in
// docs/doctor-json.md), the shapes of its summary, its usual cause and its
// default fix. Checks name findings by these values (a typo does not
// compile), and the tests hold the catalog, the checks and the document to
// each other: every id is produced by a table case, every summary matches a
// declared shape, and docs/doctor-json.md lists exactly these ids.

// id is a finding id. The strings are stable: they are the "id" of the JSON
// report and are never renamed or reused (docs/doctor-json.md).
type id string

// Finding ids, in the order of docs/doctor-json.md.
const (
	idNetNoRoute           id = "net.no-route"
	idDNSNoNameserver      id = "dns.no-nameserver"
	idDNSServerUnreachable id = "dns.server-unreachable"
	idDNSServerPortClosed  id = "dns.server-port-closed"
	idDNSServerRefused     id = "dns.server-refused"
	idDNSServfail          id = "dns.servfail"
	idDNSNotFound          id = "dns.not-found"
	idDNSSearchAmp         id = "dns.search-amplification"
	idDNSSlow              id = "dns.slow"
	idResolverCgo          id = "resolver.cgo-fallback"
	idResolverWindows      id = "resolver.windows-differs"
	idTCPRefused           id = "tcp.refused"
	idTCPTimeout           id = "tcp.timeout"
	idTCPUnreachable       id = "tcp.unreachable"
	idTCPReset             id = "tcp.reset"
	idTLSNoRoots           id = "tls.no-roots"
	idTLSUnknownAuthority  id = "tls.unknown-authority"
	idTLSExpired           id = "tls.expired"
	idTLSHostname          id = "tls.hostname-mismatch"
	idTLSHandshakeTimeout  id = "tls.handshake-timeout"
	idTLSPlainHTTP         id = "tls.plain-http"
	idTLSClientCert        id = "tls.client-cert-required"
	idTLSFailed            id = "tls.failed"
	idProxyUnreachable     id = "proxy.unreachable"
	idProxyAuth            id = "proxy.auth-required"
	idProxyMalformed       id = "proxy.malformed"
	idProxyCGI             id = "proxy.cgi"
	idProxyIgnored         id = "proxy.ignored"
	idProxyWindows         id = "proxy.windows-settings-ignored"
	idHTTPStatus           id = "http.status"
	idHTTPFailed           id = "http.failed"
	idGoproxyUnreachable   id = "goproxy.unreachable"
	idGoproxyNotAProxy     id = "goproxy.not-a-proxy"
	idGoproxyAuth          id = "goproxy.auth-required"
	idGoproxyLoginRedirect id = "goproxy.login-redirect"
	idGoproxyModuleMissing id = "goproxy.module-missing"
	idGoproxySumDB         id = "goproxy.sumdb-unreachable"
	idGoproxyPrivatePublic id = "goproxy.private-module-public"
	idGoproxyDirectNoVCS   id = "goproxy.direct-without-vcs"
	idListenLoopback       id = "listen.loopback-only"
	idListenNotListening   id = "listen.not-listening"
	idResourcesGOMEMLIMIT  id = "resources.gomemlimit-unset"
	idFactsUnreadable      id = "facts.unreadable"
)

// Finding layers: a lower layer explains failures in higher ones, and
// findings of one severity are reported in layer order.
const (
	layerNet = iota
	layerConfig
	layerDNSServer
	layerDNSName
	layerProxy
	layerTCP
	layerTLS
	layerHTTP
	layerGoproxy
	layerLocal
)

// spec is what the catalog declares about one finding id.
type spec struct {
	id    id
	layer int
	// severities are those checks may give the finding, most serious first.
	severities []Severity
	// meaning is the id's line in docs/doctor-json.md (Markdown).
	meaning string
	// summaries are the shapes of the summary line; <...> stands for a
	// measured value (a host, an address, an error text).
	summaries []string
	// cause is the cause sentence a check uses unless it knows a more
	// specific one.
	cause string
	// fix is the default remedy; a check may replace it with steps that
	// name the measured values. Steps specific to one environment start
	// with "Docker:", "Kubernetes:", "Host:" or "Windows:".
	fix []string
	// winFix are the steps for Windows (PowerShell, Docker for Windows, Git
	// for Windows): on Windows they replace the steps that name Unix tools
	// or files (see platformFix); elsewhere "Windows:" steps are dropped.
	winFix []string
}

var catalog = []spec{
	{id: idNetNoRoute, layer: layerNet, severities: []Severity{SevError},
		meaning: "no interface beyond loopback, or no route at all (`--network none`, `--internal`)",
		summaries: []string{
			"no network: only the loopback interface exists",
			"no route to <host>: the container has no default route",
		},
		cause: "The container has no interface besides lo, as with docker run --network none, so every connection fails with \"network is unreachable\".",
		fix: []string{
			"Docker: the container runs with --network none or on an --internal network; run it on a network with egress (docker run --network bridge, or docker network connect <net> <container>)",
			"Kubernetes: check the pod's CNI interface (kubectl exec <pod> -- cat /proc/net/route) and the node's CNI plugin",
			"Host: ip route add default via <gateway>; check ip addr shows an address on eth0",
		}},
	{id: idDNSNoNameserver, layer: layerConfig, severities: []Severity{SevError, SevWarn},
		meaning:   "resolv.conf missing or without a usable `nameserver <IP>`: Go uses 127.0.0.1:53 and [::1]:53",
		summaries: []string{"resolv.conf names no usable nameserver; Go falls back to 127.0.0.1:53 and [::1]:53"},
		cause:     "Without a valid \"nameserver <IP>\" line Go queries the container's own loopback, where nothing usually answers DNS.",
		fix: []string{
			"Add a nameserver line with an IP address (hostnames are ignored): nameserver 10.0.0.2",
			"Docker: docker run --dns <IP>, or \"dns\": [\"<IP>\"] in /etc/docker/daemon.json; do not bind-mount an empty /etc/resolv.conf",
			"Kubernetes: with dnsPolicy: None you must set dnsConfig.nameservers; otherwise check the kubelet's --resolv-conf",
			"Host: if the host runs systemd-resolved (127.0.0.53), point Docker at /run/systemd/resolve/resolv.conf or a real upstream",
		},
		winFix: []string{"Windows: Get-DnsClientServerAddress shows the adapters' DNS servers; Set-DnsClientServerAddress -InterfaceAlias <adapter> -ServerAddresses <IP>", "Docker for Windows: docker run --dns <IP>, or \"dns\" in C:\\ProgramData\\docker\\config\\daemon.json"}},
	{id: idDNSServerUnreachable, layer: layerDNSServer, severities: []Severity{SevError, SevWarn},
		meaning: "a nameserver does not answer (dropped, host down) or its address is unreachable (ICMP host unreachable); warn when another server answers",
		summaries: []string{
			"nameserver <servers> does not answer",
			"nameserver <servers> is unreachable (<error>)",
			"queries to nameserver <servers> fail before they are sent (<error>)",
			"no nameserver answers (<servers>)",
			"lookup of <host> failed: <error>",
		},
		cause: "DNS queries to the nameserver get no answer at all (dropped by a firewall or NetworkPolicy, or the host is down), so every lookup waits for the resolver timeout.",
		fix: []string{
			"Query the server directly to confirm: berth doctor prints each nameserver's result; from a shell, dig @<server> <name>",
			"Docker: set a reachable resolver with --dns <IP> or daemon.json \"dns\"; with 127.0.0.11 check the \"# ExtServers:\" comment in /etc/resolv.conf, the upstreams Docker forwards to",
			"Kubernetes: allow egress UDP and TCP port 53 to kube-dns in your NetworkPolicy; check that CoreDNS pods are Running (kubectl -n kube-system get pods -l k8s-app=kube-dns)",
			"Host: allow UDP/TCP 53 from the container network (firewalld: trust docker0), or remove the dead server from resolv.conf",
		},
		winFix: []string{"Windows: Resolve-DnsName <name> -Server <IP> asks one server; Get-DnsClientServerAddress lists them", "Docker for Windows: docker run --dns <IP>; on a nat network DNS goes through the host (WinNAT and the host firewall), on transparent or l2bridge networks the container asks the network's servers itself"}},
	{id: idDNSServerPortClosed, layer: layerDNSServer, severities: []Severity{SevError, SevWarn},
		meaning:   "a nameserver's host refuses port 53 at once (ICMP port unreachable, TCP reset): no DNS server runs there; warn when another server answers",
		summaries: []string{"nameserver <servers> refuses DNS on port 53 (connection refused: no DNS server runs there)"},
		cause:     "The nameserver's host is up and answers DNS queries with an ICMP port unreachable: nothing listens on port 53 there (the DNS service is stopped, or the address is a gateway or host that is not a resolver). On Linux Go's resolver reports it at once as \"connection refused\" and tries the next server.",
		fix: []string{
			"Docker: --dns <IP of a running resolver>, or \"dns\" in /etc/docker/daemon.json; a host-side resolver on 127.0.0.53 is not reachable from the container",
			"Kubernetes: check that CoreDNS pods are Running and the kube-dns Service has endpoints (kubectl -n kube-system get endpoints kube-dns)",
			"Windows: Resolve-DnsName <name> -Server <IP> tests one server; set the container's DNS with docker run --dns <IP>",
			"Host: start the DNS service on that host, or remove the line",
		}},
	{id: idDNSServerRefused, layer: layerDNSServer, severities: []Severity{SevError},
		meaning:   "the nameserver answers REFUSED",
		summaries: []string{"nameserver <servers> refuses to answer (REFUSED)"},
		cause:     "The server is up but refuses recursion for this client: not a recursive resolver, or an ACL excludes the container's network.",
		fix: []string{
			"Use a recursive resolver that serves this network",
			"Docker: --dns <recursive resolver IP>",
			"Kubernetes: check CoreDNS's forward plugin and the upstream's ACL (allow-recursion) for the node network",
			"Host: on the DNS server allow recursion for the container subnet",
		}},
	{id: idDNSServfail, layer: layerDNSServer, severities: []Severity{SevError},
		meaning: "the nameserver answers SERVFAIL (\"server misbehaving\")",
		summaries: []string{
			"nameserver <servers> answers SERVFAIL (Go prints \"server misbehaving\")",
			"lookup of <host> failed: <error>",
		},
		cause: "The nameserver is reachable but cannot resolve the name itself: its upstream servers are unreachable or failing (Docker's embedded DNS answers SERVFAIL when its ExtServers fail).",
		fix: []string{
			"The nameserver's own upstreams fail: fix or replace them",
			"Docker: the embedded DNS (127.0.0.11) answers SERVFAIL when every ExtServer fails; restart dockerd after the host's DNS changed, or set \"dns\" in daemon.json",
			"Kubernetes: check CoreDNS logs (kubectl -n kube-system logs -l k8s-app=kube-dns) and its forward target",
			"Host: test the upstream with dig @<upstream> <name>",
		},
		winFix: []string{"Windows: Resolve-DnsName <name> -Server <upstream IP> tests the upstream; Docker for Windows: --dns <IP>"}},
	{id: idDNSNotFound, layer: layerDNSName, severities: []Severity{SevError},
		meaning:   "NXDOMAIN for every name tried",
		summaries: []string{"<host> does not exist in DNS (NXDOMAIN for every name tried)"},
		cause:     "The nameservers answer, and say the name does not exist: a typo, a name from another namespace or network, or a record that was never created.",
		fix: []string{
			"Check the spelling of the name and that the record exists on the nameserver the container uses",
			"Kubernetes: a Service in another namespace is <svc>.<namespace>; check the search line",
			"Docker: container names resolve only on the same user-defined network (not the default bridge)",
		},
		winFix: []string{"Windows: Resolve-DnsName <name>; on Kubernetes Windows nodes a name with a dot is not completed with the search suffixes"}},
	{id: idDNSSearchAmp, layer: layerDNSName, severities: []Severity{SevError, SevWarn},
		meaning: "error: a search-list name answered first with other addresses than the name as given (a wrong host, usually a wildcard under a search domain); warn: 3 or more names asked before an answer. A Kubernetes short name (`svc.ns`, which exists only with a suffix) is neither",
		summaries: []string{
			"<host> resolved as <name> through the search list: probably the wrong host",
			"resolving <host> asks <n> names before the real one (ndots:<n> with <n> search domains)",
		},
		cause: "Each lookup of a name with fewer than ndots dots first tries every search suffix, each with an A and an AAAA query: more latency, more load on the nameserver, and a timeout on any of them stalls the lookup.",
		fix: []string{
			"Use a fully qualified name with a trailing dot (proxy.example.com.) so the search list is skipped",
			"Kubernetes: set dnsConfig.options ndots: 1 or 2 for pods that mostly reach external names",
			"Docker: --dns-opt ndots:1 / --dns-search to drop the suffix that matches",
			"Host: remove the wildcard record from the search domain, or the search domain from resolv.conf",
		}},
	{id: idDNSSlow, layer: layerDNSServer, severities: []Severity{SevWarn},
		meaning:   "answers take 500 ms or more, a lookup 1 s or more, or an AAAA question goes unanswered while A answers (Go waits for both)",
		summaries: []string{"DNS answers for <host> are slow"},
		cause:     "The nameserver takes hundreds of milliseconds or more per answer (an overloaded or distant resolver, packet loss, or a conntrack race); every new connection pays it.",
		fix: []string{
			"Kubernetes: use NodeLocal DNSCache; lower ndots (dnsConfig options ndots: 2) so fewer names are asked",
			"Docker: point --dns at a nearer resolver",
			"Host: check packet loss to the resolver and its load",
		}},
	{id: idResolverCgo, layer: layerConfig, severities: []Severity{SevWarn},
		meaning:   "a cgo-enabled program would use libc here (unknown options, nsswitch sources, LOCALDOMAIN...)",
		summaries: []string{"a cgo-enabled Go program would resolve names through libc here, not Go's resolver"},
		cause:     "Go hands lookups to the C library when resolv.conf or nsswitch.conf has something it does not implement; a CGO_ENABLED=0 binary (like berth) ignores it, so the app and this report may disagree.",
		fix: []string{
			"For a static Go binary this has no effect; for a cgo binary, either remove the unknown option/source or force Go's resolver with GODEBUG=netdns=go",
			"Run the app with GODEBUG=netdns=2 to see which resolver and order it uses",
		}},
	{id: idResolverWindows, layer: layerDNSName, severities: []Severity{SevError, SevWarn},
		meaning: "Windows: the native resolver (GetAddrInfoW, Go's default there) and Go's own resolver disagree about a name; error when the native one fails",
		summaries: []string{
			"Windows' native resolver (GetAddrInfoW) fails for <host> where Go's own resolver answers",
			"Go's own resolver fails for <host> where Windows' native resolver (GetAddrInfoW) answers",
		},
		cause: "On Windows, Go resolves names through GetAddrInfoW (the DNS Client) unless netdns=go, netgo or PreferGo is set; the two use different server lists, suffixes and caches.",
		fix:   []string{"Windows: Resolve-DnsName <name> and Resolve-DnsName <name> -Server <IP> show the two views; GODEBUG=netdns=go selects Go's resolver"}},
	{id: idTCPRefused, layer: layerTCP, severities: []Severity{SevError},
		meaning:   "connection refused (RST / port unreachable)",
		summaries: []string{"<host> refuses connections on port <port>"},
		cause:     "The host answered with a reset (or ICMP port-unreachable): nothing listens on that port, the service is bound to 127.0.0.1 only, or a REJECT rule is in the way.",
		fix: []string{
			"Check that the service listens on that port on an external address (berth doctor --listen :PORT inside its container)",
			"Docker: publish the right container port (-p HOST:CONTAINER); bind the app to 0.0.0.0, not 127.0.0.1",
			"Kubernetes: check the Service has endpoints (kubectl get endpoints <svc>) and targetPort matches the container port",
			"Host: look for a REJECT rule (iptables -S | grep REJECT)",
		},
		winFix: []string{"Windows: Test-NetConnection <host> -Port <port>; on the server, Get-NetTCPConnection -State Listen", "Docker for Windows: publish the port (-p HOST:CONTAINER) and allow it in Windows Defender Firewall (New-NetFirewallRule -Direction Inbound -LocalPort <port> -Protocol TCP -Action Allow)"}},
	{id: idTCPTimeout, layer: layerTCP, severities: []Severity{SevError},
		meaning: "SYN unanswered until the deadline (DROP)",
		summaries: []string{
			"connecting to <host> port <port> times out",
			"connecting to <host> port <port> failed: <error>",
		},
		cause: "The SYN got no answer at all: a firewall, security group or NetworkPolicy drops the traffic, or egress is only allowed through a proxy.",
		fix: []string{
			"A firewall drops the traffic: allow egress to that address and port, or go through the proxy your network requires (HTTPS_PROXY)",
			"Docker: check DOCKER-USER iptables rules and the host firewall; an --internal network has no egress",
			"Kubernetes: a default-deny NetworkPolicy needs an egress rule for this destination; check cloud security groups",
			"Host: iptables -S / nft list ruleset for DROP rules; test from the host with the same destination",
		},
		winFix: []string{"Windows: Test-NetConnection <host> -Port <port>; Get-NetFirewallRule -Direction Outbound -Action Block lists blocking rules", "Docker for Windows: on a nat network the host firewall and WinNAT apply; a transparent network (docker network create -d transparent) rules NAT out"}},
	{id: idTCPUnreachable, layer: layerTCP, severities: []Severity{SevError},
		meaning: "no route to host (ICMP reject) or network unreachable with a default route",
		summaries: []string{
			"<host> is unreachable (no route to host)",
			"no route to the network of <host> (network is unreachable)",
		},
		cause: "An ICMP host-unreachable or admin-prohibited came back: a REJECT rule (firewalld), or the address no longer exists (a stale pod IP).",
		fix: []string{
			"A REJECT rule answers with host-unreachable, or the address is stale",
			"Docker: firewalld may reject the docker0 zone: firewall-cmd --zone=trusted --add-interface=docker0",
			"Kubernetes: a pod IP in the target may be stale; use the Service name",
			"Host: check ip route and the firewall's REJECT rules",
		},
		winFix: []string{"Windows: Test-NetConnection <host> -TraceRoute; Get-NetRoute shows the routes", "Docker for Windows: check the container network (docker network inspect nat) and the host firewall"}},
	{id: idTCPReset, layer: layerTCP, severities: []Severity{SevError},
		meaning: "reset or closed by the peer during the handshake",
		summaries: []string{
			"<host> resets the connection",
			"<host> closes or resets the connection during the TLS handshake",
		},
		cause: "The connection was reset by the peer or something on the path (a DPI firewall, a proxy, a load balancer).",
		fix: []string{
			"Something on the path resets the connection: check the corporate firewall/DPI and any proxy",
			"Try another mirror or add |direct to GOPROXY as a fallback",
			"Check the load balancer's idle timeout and backend health",
		},
		winFix: []string{"Windows: Test-NetConnection <host> -Port <port>; check the proxy and any TLS-inspecting firewall"}},
	{id: idTLSNoRoots, layer: layerConfig, severities: []Severity{SevError, SevWarn},
		meaning:   "no CA certificate loads (error when a TLS target exists)",
		summaries: []string{"no trusted CA certificates: every HTTPS connection will fail with \"certificate signed by unknown authority\""},
		cause:     "None of the CA bundle files or directories crypto/x509 reads exists or holds a certificate (typical of FROM scratch and distroless-static images without ca-certificates).",
		fix: []string{
			"Install CA certificates in the image",
			"Docker (scratch/distroless): COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/; Debian/Ubuntu: apt-get install ca-certificates; Alpine: apk add ca-certificates",
			"Go code: import _ \"golang.org/x/crypto/x509roots/fallback\" embeds Mozilla's roots for images without any",
			"Kubernetes: mount a CA bundle and set SSL_CERT_FILE to it",
		}},
	{id: idTLSUnknownAuthority, layer: layerTLS, severities: []Severity{SevError},
		meaning: "chain not trusted; the summary says \"intercepted\" when the issuer names a TLS-inspecting product",
		summaries: []string{
			"<host> presents a certificate from an authority this container does not trust (issuer <issuer>)",
			"TLS to <host> is intercepted by a proxy (issuer <issuer>)",
		},
		cause: "The chain does not lead to any root in the loaded CA bundle: a private or corporate CA that is not installed in the image.",
		fix: []string{
			"Install the issuing CA in the image's trust store (or set SSL_CERT_FILE to a bundle that includes it); never switch verification off",
			"Docker: COPY ca.crt /usr/local/share/ca-certificates/ && RUN update-ca-certificates",
			"Kubernetes: mount the CA from a ConfigMap or Secret and set SSL_CERT_FILE",
			"Host: for a private registry or proxy, reissue its certificate from a CA the image trusts",
		},
		winFix: []string{"Windows: trust the root in the machine store: Import-Certificate -FilePath corp-root.cer -CertStoreLocation Cert:\\LocalMachine\\Root, in a Dockerfile RUN certutil -addstore Root C:\\corp-root.cer; SSL_CERT_FILE is ignored on Windows"}},
	{id: idTLSExpired, layer: layerTLS, severities: []Severity{SevError},
		meaning: "a certificate is outside its validity; the summary says \"the local clock is the likely culprit\" when local time is before NotBefore or a server's Date header disagrees by over 10 minutes",
		summaries: []string{
			"the certificate of <host> is expired or not yet valid",
			"the certificate of <host> is expired or not yet valid: the local clock is the likely culprit",
		},
		cause: "A certificate in the chain is outside its validity period at the local time.",
		fix: []string{
			"Renew the server's certificate (or its intermediate)",
			"If the certificate looks valid elsewhere, check the clock: date -u here and on the host",
		},
		winFix: []string{"Windows: w32tm /resync; containers take the host's clock (Hyper-V time synchronisation for isolated containers)"}},
	{id: idTLSHostname, layer: layerTLS, severities: []Severity{SevError},
		meaning:   "the certificate does not name the host",
		summaries: []string{"the certificate presented for <host> is for other names"},
		cause:     "The server answered with a certificate that does not name the host asked for: the wrong server (a DNS answer or search-list wildcard pointing elsewhere, a shared IP without SNI support) or a certificate that lacks this SAN.",
		fix: []string{
			"Reach the server by a name its certificate lists, or reissue the certificate with this name as a SAN",
			"If DNS sent you to the wrong server (check the resolve probe's addresses and dns.search-amplification), fix DNS instead",
		}},
	{id: idTLSHandshakeTimeout, layer: layerTLS, severities: []Severity{SevError},
		meaning:   "TCP connects but the handshake never completes (MTU black hole suspected; interface MTUs in evidence)",
		summaries: []string{"TCP to <host> connects but the TLS handshake never completes"},
		cause:     "Small packets pass and the server's large certificate flight is lost: the signature of an MTU black hole (a VPN or overlay network with a smaller MTU while ICMP \"fragmentation needed\" is filtered).",
		fix: []string{
			"Lower the MTU of the container network to the path's MTU (e.g. 1400 on VPNs and overlays)",
			"Docker: \"mtu\": 1400 in daemon.json (and for user networks: docker network create -o com.docker.network.driver.mtu=1400)",
			"Kubernetes: set the CNI's MTU (Calico veth_mtu, Flannel/Cilium mtu) below the node's",
			"Host: clamp TCP MSS: iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
		}},
	{id: idTLSPlainHTTP, layer: layerTLS, severities: []Severity{SevError},
		meaning:   "an https:// URL (or port 443) whose server answers the TLS ClientHello in plain HTTP",
		summaries: []string{"<host:port> speaks plain HTTP, not TLS: the URL says https:// for a plain-HTTP port"},
		cause:     "The server on this port speaks plain HTTP: it answered the TLS ClientHello with an HTTP response, so Go fails with \"first record does not look like a TLS handshake\" (net/http: \"server gave HTTP response to HTTPS client\").",
		fix:       []string{"Use http:// for this port, or the port where the server speaks TLS"}},
	{id: idTLSClientCert, layer: layerTLS, severities: []Severity{SevError},
		meaning:   "the server asks for a client certificate (mutual TLS) and ends the handshake without one",
		summaries: []string{"<host:port> demands a client certificate (mutual TLS) and the client presents none"},
		cause:     "The server sent a CertificateRequest and requires a certificate: Go's default client presents none, so the server ends the connection (\"tls: certificate required\" or \"bad certificate\").",
		fix: []string{
			"Configure the client certificate in the program (tls.Config.Certificates or GetClientCertificate); the go command cannot present one, so a GOPROXY that needs mutual TLS needs a local proxy in front of it (berth proxy)",
			"Or ask the operator which CAs the server accepts (the CertificateRequest lists them; see the evidence)",
		}},
	{id: idTLSFailed, layer: layerTLS, severities: []Severity{SevError},
		meaning:   "any other TLS failure",
		summaries: []string{"TLS with <host> failed: <error>"},
		cause:     "The TLS handshake or verification failed.",
		fix:       []string{"Check the server's TLS configuration (protocol versions, certificate with SANs)"}},
	{id: idProxyUnreachable, layer: layerProxy, severities: []Severity{SevError},
		meaning: "the HTTP(S) proxy refuses, times out, or fails the CONNECT",
		summaries: []string{
			"the proxy <proxy> is unreachable (<why>)",
			"the proxy <proxy> did not open a tunnel to <host>",
			"the proxy <proxy> is unreachable",
		},
		cause: "Go sends every request for this URL to the proxy named in HTTPS_PROXY/HTTP_PROXY, and the proxy does not accept connections. A proxy on 127.0.0.1 means the container's own loopback, not the host's.",
		fix: []string{
			"Check HTTPS_PROXY/HTTP_PROXY: the proxy must be reachable from inside the container",
			"Docker: a proxy on the host's 127.0.0.1 is not reachable from the container; use the host's IP or host.docker.internal (--add-host=host.docker.internal:host-gateway)",
			"Kubernetes: use the proxy's Service name or IP, and allow egress to it",
			"Host: make the proxy listen on an address the container network can reach",
		},
		winFix: []string{"Windows: Test-NetConnection <proxy host> -Port <port>; $env:HTTPS_PROXY=\"http://<proxy>:<port>\" sets the proxy Go uses; netsh winhttp show proxy shows the one Go ignores"}},
	{id: idProxyAuth, layer: layerProxy, severities: []Severity{SevError},
		meaning: "the proxy answers 407",
		summaries: []string{
			"the proxy <proxy> answers 407 Proxy Authentication Required",
			"the proxy <proxy> requires authentication",
		},
		cause: "The proxy wants credentials; Go sends only Basic credentials taken from the proxy URL's user:password part.",
		fix: []string{
			"Put the credentials in the proxy URL: HTTPS_PROXY=http://user:password@proxy:3128 (URL-encode special characters); Go only does Basic auth",
			"For NTLM or Kerberos proxies run a local helper (cntlm, px) and point HTTPS_PROXY at it",
			"Kubernetes: keep the proxy URL with credentials in a Secret and set it with env valueFrom",
		},
		winFix: []string{"Windows: $env:HTTPS_PROXY=\"http://user:password@<proxy>:<port>\"; for NTLM proxies run a local helper (px) and point HTTPS_PROXY at it"}},
	{id: idProxyMalformed, layer: layerConfig, severities: []Severity{SevError},
		meaning: "HTTP(S)_PROXY is malformed: Go drops it (no proxy, direct connections) or reads it as another URL and dials that host (`http://squid example:3128` makes Go dial the host `http`)",
		summaries: []string{
			"<var>=<value> is malformed: Go ignores it and connects directly, without any error",
			"<var>=<value> is malformed: Go dials the proxy host <host> (<host:port>) instead, without any error",
		},
		cause: "net/http parses the value itself and never reports a parse error: a value that does not parse even with http:// prepended is dropped (direct connections), and one that parses only with http:// prepended, or with a scheme name where the host belongs, sends requests to the host Go derived.",
		fix: []string{
			"Fix the value: a URL such as http://proxy.corp.example:3128 (or host:port)",
			"Docker: check -e HTTPS_PROXY and ~/.docker/config.json \"proxies\"; Kubernetes: check the pod env; Host: check /etc/environment",
		}},
	{id: idProxyCGI, layer: layerConfig, severities: []Severity{SevWarn},
		meaning:   "REQUEST_METHOD set: Go ignores HTTP_PROXY for http://",
		summaries: []string{"REQUEST_METHOD is set: Go refuses HTTP_PROXY for http:// URLs"},
		cause:     "net/http treats a process with REQUEST_METHOD as a CGI script and ignores HTTP_PROXY (golang.org/s/cgihttpproxy).",
		fix:       []string{"Unset REQUEST_METHOD in the container environment."}},
	{id: idProxyIgnored, layer: layerConfig, severities: []Severity{SevInfo},
		meaning:   "a proxy variable other tools read and Go does not (ALL_PROXY, shadowed lowercase)",
		summaries: []string{"a proxy variable other tools use is ignored by Go"},
		cause:     "Go reads HTTP_PROXY/HTTPS_PROXY/NO_PROXY (uppercase first) and never ALL_PROXY.",
		fix:       []string{"Set HTTPS_PROXY (uppercase) to the proxy Go should use."}},
	{id: idProxyWindows, layer: layerConfig, severities: []Severity{SevWarn},
		meaning:   "Windows: a WinINet (Internet Options) or WinHTTP (netsh winhttp) proxy is set while HTTP(S)_PROXY is unset; Go reads only the variables",
		summaries: []string{"Windows proxy settings name <proxy>, but Go ignores them: HTTPS_PROXY is unset"},
		cause:     "Browsers, PowerShell and WinHTTP clients use the Windows proxy settings; net/http reads only HTTP_PROXY, HTTPS_PROXY and NO_PROXY, so a Go program connects directly, into a firewall that allows only the proxy.",
		fix:       []string{"Windows: set HTTPS_PROXY for Go ($env:HTTPS_PROXY in PowerShell, ENV HTTPS_PROXY in a Dockerfile); netsh winhttp show proxy prints the setting Go ignores"}},
	{id: idHTTPStatus, layer: layerHTTP, severities: []Severity{SevWarn},
		meaning:   "the path works; the server answers 5xx",
		summaries: []string{"<url> answered <status>"},
		cause:     "The network path works; the server itself reports an error.",
		fix:       []string{"Check the server's logs; the network is not at fault for this target."}},
	{id: idHTTPFailed, layer: layerHTTP, severities: []Severity{SevError},
		meaning:   "the request failed after the path checks passed",
		summaries: []string{"GET <url> failed: <error>"},
		cause:     "The request failed after the network path checks passed.",
		fix:       []string{"Check the server and any proxy in between; see the evidence."}},
	{id: idGoproxyUnreachable, layer: layerGoproxy, severities: []Severity{SevError},
		meaning:   "a GOPROXY entry answers the module protocol with an error status",
		summaries: []string{"GOPROXY <proxy> does not serve modules (<error>)"},
		cause:     "The module proxy is reachable on the network but fails the GOPROXY protocol: it answers an error status (its own upstream is down, or access is denied), so go mod download fails.",
		fix: []string{
			"Check the proxy's own upstream and logs, or add a fallback: GOPROXY=<your proxy>,https://<another mirror>,direct",
			"Run berth proxy as a local caching proxy for builds",
		}},
	{id: idGoproxyNotAProxy, layer: layerGoproxy, severities: []Severity{SevError},
		meaning: "a GOPROXY entry answers `@v/list` with 200 and an HTML page, a JSON document or other text instead of lines of versions (a web UI URL, a sign-in page), or answers the list but not `@v/<version>.info` (`@latest`) with the version's JSON",
		summaries: []string{
			"GOPROXY=<value>: <proxy> answers the module protocol with an HTML page, not a version list",
			"GOPROXY=<value>: <proxy> answers the module protocol with a JSON document, not a version list",
			"GOPROXY=<value>: <proxy> answers the module protocol with text that is not a version list",
			"GOPROXY=<value>: <proxy> answers <module>/@v/<version>.info with <an HTML page, a JSON document without Version v, text, an empty body>, not a version's JSON",
			"GOPROXY=<value>: <proxy> answers <module>/@latest with <an HTML page, a JSON document without a valid Version, text, an empty body>, not a version's JSON",
		},
		cause: "GOPROXY must be the base URL of the module protocol, where <module>/@v/list answers lines of versions; this URL answers something else, so the go command fails to parse it.",
		fix:   []string{"Set GOPROXY to the proxy's module API URL (test: curl -fsS <GOPROXY>/golang.org/x/text/@v/list prints versions)"}},
	{id: idGoproxyAuth, layer: layerGoproxy, severities: []Severity{SevError},
		meaning: "a GOPROXY entry answers 401 or 403: it wants credentials the go command does not send (GOAUTH, netrc `machine host:port`), or refuses those sent",
		summaries: []string{
			"GOPROXY=<value>: <proxy> answers <status> to the module protocol: it wants credentials",
			"GOPROXY=<value>: <proxy> answers <status> to the module protocol: the credentials sent are refused",
		},
		cause: "The proxy requires authentication; the go command sends Basic credentials only from GOAUTH (by default the netrc file, matched on the URL's host:port).",
		fix:   []string{"Add a netrc line machine <host:port> login <user> password <token> ($HOME/.netrc or NETRC), or set GOPRIVATE for the private paths only"}},
	{id: idGoproxyLoginRedirect, layer: layerGoproxy, severities: []Severity{SevError},
		meaning:   "a GOPROXY entry redirects module requests to a page (a sign-in page, single sign-on) instead of answering them",
		summaries: []string{"GOPROXY=<value>: <proxy> redirects module requests to <url>, a page, not the module protocol"},
		cause:     "Requests without credentials are redirected to a sign-in page; the go command follows the redirect and gets HTML where versions belong.",
		fix:       []string{"Use the proxy's API URL with a token in netrc (machine <host:port>) or GOAUTH"}},
	{id: idGoproxyModuleMissing, layer: layerGoproxy, severities: []Severity{SevInfo},
		meaning:   "the proxy has no versions of the probe module",
		summaries: []string{"the proxy has no versions of the probe module"},
		cause:     "The proxy answered 404 or 410 for the version list; it works but may not serve public modules.",
		fix:       []string{"Use --module or check the proxy's upstream configuration."}},
	{id: idGoproxySumDB, layer: layerGoproxy, severities: []Severity{SevError},
		meaning: "the checksum database is not reachable: through the proxy (it fails `/supported` or `/latest`), or directly when no proxy serves it",
		summaries: []string{
			"the checksum database <name> is not reachable through <proxy>",
			"<proxy> fails /sumdb/<name>/supported (<error>)",
			"the checksum database <name> is unreachable: the proxy does not serve it and the direct path fails",
		},
		cause: "The proxy says it proxies the checksum database but cannot fetch from it, so go cannot verify new modules (\"verifying module: ... \").",
		fix: []string{
			"Use a GOPROXY that proxies the checksum database (berth proxy does), or allow egress to the checksum database",
			"For private modules only: GONOSUMDB=<private globs> (or GOPRIVATE); GOSUMDB=off switches verification off for everything and is a last resort",
		},
		winFix: []string{"Windows: Invoke-WebRequest -UseBasicParsing <GOPROXY>/sumdb/<name>/supported tests the proxy path"}},
	{id: idGoproxyPrivatePublic, layer: layerGoproxy, severities: []Severity{SevError},
		meaning:   "a private-looking module path (from `--module` or ./go.mod) not covered by GOPRIVATE/GONOPROXY",
		summaries: []string{"module <module> looks private but GOPRIVATE does not cover it"},
		cause:     "The go command sends its path to the public proxy, which answers 404/410, and asks the public checksum database about it, leaking the name and failing the build.",
		fix: []string{
			"Set GOPRIVATE to a glob covering the module (its host and org)",
			"Docker: ENV GOPRIVATE=... in the build stage; pass credentials with a build secret (.netrc), not ENV",
			"Kubernetes/CI: set GOPRIVATE in the job environment; keep GOPROXY for public modules",
		}},
	{id: idGoproxyDirectNoVCS, layer: layerGoproxy, severities: []Severity{SevError, SevWarn},
		meaning:   "GOPROXY has `direct` and git is not on PATH (error when `direct` is the first entry)",
		summaries: []string{"GOPROXY includes \"direct\" but no git binary is on PATH"},
		cause:     "\"direct\" makes the go command fetch modules with git (or another VCS); without it every direct fetch fails with exec: \"git\": executable file not found.",
		fix: []string{
			"Install git in the build image (apt-get install git / apk add git), or remove direct: GOPROXY=<proxy> only",
			"For private modules served by a proxy, list them in GOPRIVATE and point GOPROXY at a proxy that can fetch them",
		},
		winFix: []string{"Windows: install Git for Windows (winget install --id Git.Git -e; in a Dockerfile, unpack MinGit and add its cmd directory to PATH) so git.exe is on PATH, or remove direct: GOPROXY=<proxy>"}},
	{id: idListenLoopback, layer: layerLocal, severities: []Severity{SevError},
		meaning:   "a `--listen` port is bound to 127.0.0.1/::1 only",
		summaries: []string{"port <port> listens on loopback only; it is unreachable from outside the container"},
		cause:     "The service is bound to 127.0.0.1 (or ::1). Published ports and Services arrive on the container's eth0 address, so clients get \"connection refused\".",
		fix: []string{
			"Bind the service to all interfaces: \":8080\" or \"0.0.0.0:8080\" in Go (net.Listen(\"tcp\", \":8080\")), not \"127.0.0.1:8080\" or \"localhost:8080\"",
			"Docker: -p only forwards to the container's eth0 address; Kubernetes: Services and probes (except exec) connect to the pod IP",
		}},
	{id: idListenNotListening, layer: layerLocal, severities: []Severity{SevError},
		meaning: "nothing listens on a `--listen` port (or not on the address asked)",
		summaries: []string{
			"nothing listens on port <port>",
			"port <port> does not listen on <addr>",
		},
		cause: "No TCP socket in this network namespace is listening on the port: the service is not running, crashed, or uses another port.",
		fix: []string{
			"Check the service's logs and its configured port",
			"Docker: -p HOST:CONTAINER must name the port the app listens on",
			"Kubernetes: the Service targetPort must match the container port",
		}},
	{id: idResourcesGOMEMLIMIT, layer: layerLocal, severities: []Severity{SevWarn},
		meaning:   "a cgroup memory limit exists and GOMEMLIMIT is unset",
		summaries: []string{"memory limit <size> but GOMEMLIMIT is unset"},
		cause:     "The Go runtime does not read the cgroup memory limit; without GOMEMLIMIT the heap may grow past the limit and the container is OOM-killed instead of collecting garbage harder.",
		fix: []string{
			"Set GOMEMLIMIT to about 90% of the limit",
			"Docker: docker run -e GOMEMLIMIT=... (or ENV GOMEMLIMIT in the Dockerfile)",
			"Kubernetes: env GOMEMLIMIT from resourceFieldRef limits.memory (divisor 1), or use github.com/KimMachineGun/automemlimit",
		}},
	{id: idFactsUnreadable, layer: layerLocal, severities: []Severity{SevInfo},
		meaning:   "a file exists but could not be read",
		summaries: []string{"could not read <path>"},
		cause:     "The file exists but could not be read or is not a regular file; facts that depend on it are missing.",
		fix:       []string{"Check the file's permissions and type (ls -l <path>)."}},
}

// specs indexes the catalog by id.
var specs = func() map[id]*spec {
	m := make(map[id]*spec, len(catalog))
	for i := range catalog {
		m[catalog[i].id] = &catalog[i]
	}
	return m
}()
