package doctor

// fixes are the default remedies per finding ID. A check may replace them
// with steps that name the measured values. Steps specific to one
// environment start with "Docker:", "Kubernetes:" or "Host:".
var fixes = map[string][]string{
	"net.no-route": {
		"Docker: the container runs with --network none or on an --internal network; run it on a network with egress (docker run --network bridge, or docker network connect <net> <container>)",
		"Kubernetes: check the pod's CNI interface (kubectl exec <pod> -- cat /proc/net/route) and the node's CNI plugin",
		"Host: ip route add default via <gateway>; check ip addr shows an address on eth0",
	},
	"dns.no-nameserver": {
		"Add a nameserver line with an IP address (hostnames are ignored): nameserver 10.0.0.2",
		"Docker: docker run --dns <IP>, or \"dns\": [\"<IP>\"] in /etc/docker/daemon.json; do not bind-mount an empty /etc/resolv.conf",
		"Kubernetes: with dnsPolicy: None you must set dnsConfig.nameservers; otherwise check the kubelet's --resolv-conf",
		"Host: if the host runs systemd-resolved (127.0.0.53), point Docker at /run/systemd/resolve/resolv.conf or a real upstream",
	},
	"dns.server-unreachable": {
		"Query the server directly to confirm: berth doctor prints each nameserver's result; from a shell, dig @<server> <name>",
		"Docker: set a reachable resolver with --dns <IP> or daemon.json \"dns\"; with 127.0.0.11 check the \"# ExtServers:\" comment in /etc/resolv.conf, the upstreams Docker forwards to",
		"Kubernetes: allow egress UDP and TCP port 53 to kube-dns in your NetworkPolicy; check that CoreDNS pods are Running (kubectl -n kube-system get pods -l k8s-app=kube-dns)",
		"Host: allow UDP/TCP 53 from the container network (firewalld: trust docker0), or remove the dead server from resolv.conf",
	},
	"dns.server-refused": {
		"Use a recursive resolver that serves this network",
		"Docker: --dns <recursive resolver IP>",
		"Kubernetes: check CoreDNS's forward plugin and the upstream's ACL (allow-recursion) for the node network",
		"Host: on the DNS server allow recursion for the container subnet",
	},
	"dns.servfail": {
		"The nameserver's own upstreams fail: fix or replace them",
		"Docker: the embedded DNS (127.0.0.11) answers SERVFAIL when every ExtServer fails; restart dockerd after the host's DNS changed, or set \"dns\" in daemon.json",
		"Kubernetes: check CoreDNS logs (kubectl -n kube-system logs -l k8s-app=kube-dns) and its forward target",
		"Host: test the upstream with dig @<upstream> <name>",
	},
	"dns.slow": {
		"Kubernetes: use NodeLocal DNSCache; lower ndots (dnsConfig options ndots: 2) so fewer names are asked",
		"Docker: point --dns at a nearer resolver",
		"Host: check packet loss to the resolver and its load",
	},
	"dns.search-amplification": {
		"Use a fully qualified name with a trailing dot (proxy.example.com.) so the search list is skipped",
		"Kubernetes: set dnsConfig.options ndots: 1 or 2 for pods that mostly reach external names",
		"Docker: --dns-opt ndots:1 / --dns-search to drop the suffix that matches",
		"Host: remove the wildcard record from the search domain, or the search domain from resolv.conf",
	},
	"resolver.cgo-fallback": {
		"For a static Go binary this has no effect; for a cgo binary, either remove the unknown option/source or force Go's resolver with GODEBUG=netdns=go",
		"Run the app with GODEBUG=netdns=2 to see which resolver and order it uses",
	},
	"tcp.refused": {
		"Check that the service listens on that port on an external address (berth doctor --listen :PORT inside its container)",
		"Docker: publish the right container port (-p HOST:CONTAINER); bind the app to 0.0.0.0, not 127.0.0.1",
		"Kubernetes: check the Service has endpoints (kubectl get endpoints <svc>) and targetPort matches the container port",
		"Host: look for a REJECT rule (iptables -S | grep REJECT)",
	},
	"tcp.timeout": {
		"A firewall drops the traffic: allow egress to that address and port, or go through the proxy your network requires (HTTPS_PROXY)",
		"Docker: check DOCKER-USER iptables rules and the host firewall; an --internal network has no egress",
		"Kubernetes: a default-deny NetworkPolicy needs an egress rule for this destination; check cloud security groups",
		"Host: iptables -S / nft list ruleset for DROP rules; test from the host with the same destination",
	},
	"tcp.unreachable": {
		"A REJECT rule answers with host-unreachable, or the address is stale",
		"Docker: firewalld may reject the docker0 zone: firewall-cmd --zone=trusted --add-interface=docker0",
		"Kubernetes: a pod IP in the target may be stale; use the Service name",
		"Host: check ip route and the firewall's REJECT rules",
	},
	"tcp.reset": {
		"Something on the path resets the connection: check the corporate firewall/DPI and any proxy",
		"Try another mirror or add |direct to GOPROXY as a fallback",
		"Check the load balancer's idle timeout and backend health",
	},
	"tls.no-roots": {
		"Install CA certificates in the image",
		"Docker (scratch/distroless): COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/; Debian/Ubuntu: apt-get install ca-certificates; Alpine: apk add ca-certificates",
		"Go code: import _ \"golang.org/x/crypto/x509roots/fallback\" embeds Mozilla's roots for images without any",
		"Kubernetes: mount a CA bundle and set SSL_CERT_FILE to it",
	},
	"tls.unknown-authority": {
		"Install the issuing CA in the image's trust store (or set SSL_CERT_FILE to a bundle that includes it); never switch verification off",
		"Docker: COPY ca.crt /usr/local/share/ca-certificates/ && RUN update-ca-certificates",
		"Kubernetes: mount the CA from a ConfigMap or Secret and set SSL_CERT_FILE",
		"Host: for a private registry or proxy, reissue its certificate from a CA the image trusts",
	},
	"tls.expired": {
		"Renew the server's certificate (or its intermediate)",
		"If the certificate looks valid elsewhere, check the clock: date -u here and on the host",
	},
	"tls.hostname-mismatch": {
		"Reach the server by a name its certificate lists, or reissue the certificate with this name as a SAN",
		"If DNS sent you to the wrong server (check the resolve probe's addresses and dns.search-amplification), fix DNS instead",
	},
	"tls.handshake-timeout": {
		"Lower the MTU of the container network to the path's MTU (e.g. 1400 on VPNs and overlays)",
		"Docker: \"mtu\": 1400 in daemon.json (and for user networks: docker network create -o com.docker.network.driver.mtu=1400)",
		"Kubernetes: set the CNI's MTU (Calico veth_mtu, Flannel/Cilium mtu) below the node's",
		"Host: clamp TCP MSS: iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
	},
	"proxy.unreachable": {
		"Check HTTPS_PROXY/HTTP_PROXY: the proxy must be reachable from inside the container",
		"Docker: a proxy on the host's 127.0.0.1 is not reachable from the container; use the host's IP or host.docker.internal (--add-host=host.docker.internal:host-gateway)",
		"Kubernetes: use the proxy's Service name or IP, and allow egress to it",
		"Host: make the proxy listen on an address the container network can reach",
	},
	"proxy.auth-required": {
		"Put the credentials in the proxy URL: HTTPS_PROXY=http://user:password@proxy:3128 (URL-encode special characters); Go only does Basic auth",
		"For NTLM or Kerberos proxies run a local helper (cntlm, px) and point HTTPS_PROXY at it",
		"Kubernetes: keep the proxy URL with credentials in a Secret and set it with env valueFrom",
	},
	"proxy.malformed": {
		"Fix the value: a URL such as http://proxy.corp.example:3128 (or host:port)",
		"Docker: check -e HTTPS_PROXY and ~/.docker/config.json \"proxies\"; Kubernetes: check the pod env; Host: check /etc/environment",
	},
	"goproxy.unreachable": {
		"Check the proxy's own upstream and logs, or add a fallback: GOPROXY=<your proxy>,https://<another mirror>,direct",
		"Run berth proxy as a local caching proxy for builds",
	},
	"goproxy.sumdb-unreachable": {
		"Use a GOPROXY that proxies the checksum database (berth proxy does), or allow egress to the checksum database",
		"For private modules only: GONOSUMDB=<private globs> (or GOPRIVATE); GOSUMDB=off switches verification off for everything and is a last resort",
	},
	"goproxy.direct-without-vcs": {
		"Install git in the build image (apt-get install git / apk add git), or remove direct: GOPROXY=<proxy> only",
		"For private modules served by a proxy, list them in GOPRIVATE and point GOPROXY at a proxy that can fetch them",
	},
	"listen.loopback-only": {
		"Bind the service to all interfaces: \":8080\" or \"0.0.0.0:8080\" in Go (net.Listen(\"tcp\", \":8080\")), not \"127.0.0.1:8080\" or \"localhost:8080\"",
		"Docker: -p only forwards to the container's eth0 address; Kubernetes: Services and probes (except exec) connect to the pod IP",
	},
}
