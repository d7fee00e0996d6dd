/* The kernel's floor for building a netlab-shaped lab: the bare system calls, no Python, no fork.
 *
 *   floor up PREFIX PODS [NODES [MASK]]  build it; prints {"up_s": ...} (the time of the build, measured inside)
 *   floor down PREFIX                remove it;  prints {"down_s": ...}
 *
 * Built by scripts/bench with `gcc -O2 -pthread`. Run as root. What it builds, with the same kernel work
 * netlab's fabric does (netlab/dataplane/fabric.py), one rtnetlink request per step, each acknowledged:
 *   underlay   netns PREFIX.underlay, bridge underlay0 172.18.0.1/16, up
 *   per node   netns PREFIX.node.nK, veth eth0 with its peer on underlay0, 172.18.0.(K+2)/16,
 *              bridge cni0 10.244.(4K).1/22, ip_forward=1, host-gw routes to the other nodes' podCIDRs
 *              (MASK, default 22: each node's podCIDR is the K-th /MASK of 10.244.0.0/16; the benchmark part
 *              `scale` builds 100 nodes with /24s, as netlab's default nodeCIDRMaskSize)
 *   per pod    (the part that scales) on one dedicated thread, as netlab does:
 *              unshare(CLONE_NEWNET|CLONE_NEWUTS); IPv6 off in the namespace's default (as netlab: its lab's
 *              interfaces carry no IPv6); bind-mount /proc/self/task/TID/ns/{net,uts} to
 *              /run/netns/PREFIX.pod.I and /run/netlab/floor/PREFIX/I.uts; sethostname;
 *              RTM_NEWLINK veth (node side on cni0, up, peer eth0 put straight into the pod by
 *              IFLA_NET_NS_FD) through a netlink socket opened in the node; hairpin on (AF_BRIDGE
 *              IFLA_PROTINFO); in the pod icmp_ratelimit=0 and, as the CNI bridge plugin sets it,
 *              arp_notify=1 (eth0 has IPv6 off from the namespace's default; through a procfs
 *              instance of its own, as netlab); through a
 *              socket opened in the pod: lo up, eth0 up, 10.244.x.y/22 on eth0, default route via the node's cni0 address, eth0's own MAC set again
 *              (arp_notify: a gratuitous ARP, as netlab and the CNI bridge plugin send).
 * Not here, and done by netlab: a node's VXLAN device with a neighbour and FDB entry per other node (the
 * floor's nodes are joined by host-gw routes, a third of those requests), and, on a node that existed before
 * the `up` (not in the benchmark, whose nodes are new), its look for a stale veth and its refresh of the
 * node's neighbour entry for the pod.
 * Pods are spread round-robin over the nodes. Teardown unmounts and unlinks the namespace files (the
 * kernel frees the links with the namespaces), as `netlab down` does.
 *
 * Four switches for experiments, off in the benchmark: FLOOR_NO_GARP=1 leaves the gratuitous ARP out;
 * FLOOR_PROC_SYS=1 writes the sysctls through /proc/sys instead of a private procfs instance (see sysctl()
 * below); FLOOR_TRACE=1 prints the time every 100 pods (the per-pod cost grows with the number of namespaces: the bridge's port list, /proc/sys lookups);
 * FLOOR_IPV6=1 leaves IPv6 on in the new namespaces, as netlab did before: every eth0 gets a link-local
 * address, joins its multicast groups and solicits routers, and cni0 floods each such packet to every pod.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_bridge.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAXNODES 256
static char prefix[64];
static int npods, nnodes = 3, mask = 22;

static void die(const char *what) { fprintf(stderr, "floor: %s: %s\n", what, strerror(errno)); exit(1); }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ rtnetlink */
struct req { char buf[1024] __attribute__((aligned(8))); };
#define NH(r) ((struct nlmsghdr *)(r)->buf)
static unsigned seq;

static struct rtattr *addattr(struct nlmsghdr *n, int type, const void *data, int len) {
    struct rtattr *rta = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
    rta->rta_type = type;
    rta->rta_len = RTA_LENGTH(len);
    if (len) memcpy(RTA_DATA(rta), data, len);
    n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(rta->rta_len);
    return rta;
}
static void addu32(struct nlmsghdr *n, int type, unsigned v) { addattr(n, type, &v, 4); }
static void addstr(struct nlmsghdr *n, int type, const char *s) { addattr(n, type, s, strlen(s) + 1); }
static struct rtattr *nest(struct nlmsghdr *n, int type) { return addattr(n, type, NULL, 0); }
static void nest_end(struct nlmsghdr *n, struct rtattr *r) { r->rta_len = (char *)n + n->nlmsg_len - (char *)r; }

static int nl_open(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) die("netlink socket");
    return fd;
}

static void nl_talk(int fd, struct nlmsghdr *n, const char *what) {
    n->nlmsg_seq = ++seq;
    n->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    if (send(fd, n, n->nlmsg_len, 0) < 0) die(what);
    char buf[8192];
    for (;;) {
        int len = recv(fd, buf, sizeof buf, 0);
        if (len < 0) die(what);
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != n->nlmsg_seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                if (e->error) { errno = -e->error; die(what); }
                return;
            }
        }
    }
}

static struct ifinfomsg *link_req(struct req *r, int type, int flags) {
    memset(r, 0, sizeof *r);
    NH(r)->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    NH(r)->nlmsg_type = type;
    NH(r)->nlmsg_flags = flags;
    struct ifinfomsg *ifi = NLMSG_DATA(NH(r));
    ifi->ifi_family = AF_UNSPEC;
    return ifi;
}

static void link_up(int fd, int index) {
    struct req r;
    struct ifinfomsg *ifi = link_req(&r, RTM_NEWLINK, 0);
    ifi->ifi_index = index;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    nl_talk(fd, NH(&r), "set link up");
}

/* `ip link set dev INDEX address <its own MAC>`: with arp_notify=1 the kernel announces the link's IPv4
 * address (a gratuitous ARP, flooded over cni0 to the node's other pods), as netlab and the CNI bridge
 * plugin do once a pod's address is configured */
static void announce(int fd, int ioc, int index, const char *name) {
    struct ifreq ifr = {0};
    struct req r;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(ioc, SIOCGIFHWADDR, &ifr)) die("SIOCGIFHWADDR");
    struct ifinfomsg *ifi = link_req(&r, RTM_NEWLINK, 0);
    ifi->ifi_index = index;
    addattr(NH(&r), IFLA_ADDRESS, ifr.ifr_hwaddr.sa_data, 6);
    nl_talk(fd, NH(&r), "announce the address");
}

static void add_bridge(int fd, const char *name) {
    struct req r;
    link_req(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    addstr(NH(&r), IFLA_IFNAME, name);
    struct rtattr *li = nest(NH(&r), IFLA_LINKINFO);
    addstr(NH(&r), IFLA_INFO_KIND, "bridge");
    nest_end(NH(&r), li);
    nl_talk(fd, NH(&r), "create bridge");
}

/* veth NAME (on bridge MASTER, up) <-> PEER in the namespace NSFD */
static void add_veth(int fd, const char *name, int master, const char *peer, int nsfd) {
    struct req r;
    struct ifinfomsg *ifi = link_req(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    addstr(NH(&r), IFLA_IFNAME, name);
    addu32(NH(&r), IFLA_MTU, 1500);
    addu32(NH(&r), IFLA_MASTER, master);
    struct rtattr *li = nest(NH(&r), IFLA_LINKINFO);
    addstr(NH(&r), IFLA_INFO_KIND, "veth");
    struct rtattr *data = nest(NH(&r), IFLA_INFO_DATA);
    struct rtattr *p = nest(NH(&r), VETH_INFO_PEER);
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
    NH(&r)->nlmsg_len += NLMSG_ALIGN(sizeof pifi);
    memcpy(RTA_DATA(p), &pifi, sizeof pifi);
    addstr(NH(&r), IFLA_IFNAME, peer);
    addu32(NH(&r), IFLA_MTU, 1500);
    addu32(NH(&r), IFLA_NET_NS_FD, nsfd);
    nest_end(NH(&r), p);
    nest_end(NH(&r), data);
    nest_end(NH(&r), li);
    nl_talk(fd, NH(&r), "create veth");
}

static void hairpin(int fd, int index) {
    struct req r;
    struct ifinfomsg *ifi = link_req(&r, RTM_SETLINK, 0);
    ifi->ifi_family = AF_BRIDGE;
    ifi->ifi_index = index;
    struct rtattr *pi = addattr(NH(&r), IFLA_PROTINFO | NLA_F_NESTED, NULL, 0);
    unsigned char on = 1;
    addattr(NH(&r), IFLA_BRPORT_MODE, &on, 1);
    nest_end(NH(&r), pi);
    nl_talk(fd, NH(&r), "hairpin on");
}

static void add_addr(int fd, int index, const char *ip, int plen) {
    struct req r;
    memset(&r, 0, sizeof r);
    NH(&r)->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    NH(&r)->nlmsg_type = RTM_NEWADDR;
    NH(&r)->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct ifaddrmsg *ifa = NLMSG_DATA(NH(&r));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = plen;
    ifa->ifa_index = index;
    struct in_addr a;
    inet_pton(AF_INET, ip, &a);
    addattr(NH(&r), IFA_LOCAL, &a, 4);
    addattr(NH(&r), IFA_ADDRESS, &a, 4);
    nl_talk(fd, NH(&r), "add address");
}

static void add_route(int fd, const char *dst, int plen, const char *gw) {
    struct req r;
    memset(&r, 0, sizeof r);
    NH(&r)->nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    NH(&r)->nlmsg_type = RTM_NEWROUTE;
    NH(&r)->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct rtmsg *rt = NLMSG_DATA(NH(&r));
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = plen;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    struct in_addr a;
    if (plen) { inet_pton(AF_INET, dst, &a); addattr(NH(&r), RTA_DST, &a, 4); }
    inet_pton(AF_INET, gw, &a);
    addattr(NH(&r), RTA_GATEWAY, &a, 4);
    nl_talk(fd, NH(&r), "add route");
}

/* ------------------------------------------------------------------ namespaces */
static void write_file(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0) die(path);
    close(fd);
}

/* A sysctl of this thread's namespace, as netlab writes it (netlab/dataplane/procsys.py): through a
 * procfs instance of our own, a detached mount (fsopen/fsmount), replaced every 192 opens. Through
 * /proc/sys, the first lookup in each new namespace walks a dcache chain holding an entry per namespace
 * (FLOOR_PROC_SYS=1: 74 s instead of 19 s for 10,000 pods). */
static int proc_sys_path;   /* FLOOR_PROC_SYS=1 */

static void sysctl(const char *key, const char *value) {
    static int mnt = -1, uses;
    char path[160];
    if (proc_sys_path) {
        snprintf(path, sizeof path, "/proc/sys/%s", key);
        write_file(path, value);
        return;
    }
    if (mnt < 0 || uses++ >= 192) {
        if (mnt >= 0) close(mnt);
        int fs = syscall(430 /* fsopen */, "proc", 1 /* FSOPEN_CLOEXEC */);
        if (fs < 0) die("fsopen proc");
        if (syscall(431 /* fsconfig */, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0)) die("fsconfig");
        mnt = syscall(432 /* fsmount */, fs, 1 /* FSMOUNT_CLOEXEC */, 0);
        if (mnt < 0) die("fsmount");
        close(fs);
        uses = 1;
    }
    snprintf(path, sizeof path, "sys/%s", key);
    int fd = openat(mnt, path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0) die(path);
    close(fd);
}

static void mount_own(const char *kind, const char *path) {
    char src[96];
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) die(path);
    close(fd);
    snprintf(src, sizeof src, "/proc/self/task/%ld/ns/%s", (long)syscall(SYS_gettid), kind);
    if (mount(src, path, NULL, MS_BIND, NULL)) die("bind mount");
}

/* this thread into a new netns named NAME (and a UTS namespace at UTS with HOSTNAME if given) */
static int no_ipv6 = 1;   /* FLOOR_IPV6=1 clears it: an experiment, not what netlab does */

static void new_ns(const char *name, const char *uts, const char *hostname) {
    char path[160];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    if (unshare(CLONE_NEWNET | (uts ? CLONE_NEWUTS : 0))) die("unshare");
    if (no_ipv6) sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    mount_own("net", path);
    if (uts) {
        mount_own("uts", uts);
        if (sethostname(hostname, strlen(hostname))) die("sethostname");
    }
}

static int ifindex(int sock, const char *name) {
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(sock, SIOCGIFINDEX, &ifr)) die(name);
    return ifr.ifr_ifindex;
}

static int self_netns_fd(void) {
    char src[96];
    snprintf(src, sizeof src, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open own netns");
    return fd;
}

/* address OFFSET of node K's podCIDR (the K-th /MASK of 10.244.0.0/16) */
static void node_ip(char *buf, size_t len, int k, int offset) {
    unsigned a = (10u << 24) | (244u << 16);
    a += (unsigned)k << (32 - mask);
    a += (unsigned)offset;
    snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static void *build(void *unused) {
    (void)unused;
    char name[128], ip[32], gw[32], uts[192], host[64];
    int nl_node[MAXNODES], ioc_node[MAXNODES], cni[MAXNODES];
    int nodes_pods[MAXNODES] = {0};

    /* underlay */
    snprintf(name, sizeof name, "%s.underlay", prefix);
    new_ns(name, NULL, NULL);
    int ul = nl_open(), ul_ioc = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int ul_fd = self_netns_fd();
    link_up(ul, 1);
    add_bridge(ul, "underlay0");
    int ub = ifindex(ul_ioc, "underlay0");
    add_addr(ul, ub, "172.18.0.1", 16);
    link_up(ul, ub);

    /* nodes: eth0 on the underlay, cni0, forwarding, host-gw routes */
    for (int k = 0; k < nnodes; k++) {
        snprintf(name, sizeof name, "%s.node.n%d", prefix, k + 1);
        new_ns(name, NULL, NULL);
        nl_node[k] = nl_open();
        ioc_node[k] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int fd = self_netns_fd();
        char outer[IFNAMSIZ];
        snprintf(outer, sizeof outer, "n%d", k + 1);
        add_veth(ul, outer, ub, "eth0", fd);
        close(fd);
        sysctl("net/ipv4/ip_forward", "1");
        link_up(nl_node[k], 1);
        int eth0 = ifindex(ioc_node[k], "eth0");
        snprintf(ip, sizeof ip, "172.18.%d.%d", (k + 2) / 256, (k + 2) % 256);
        add_addr(nl_node[k], eth0, ip, 16);
        link_up(nl_node[k], eth0);
        add_bridge(nl_node[k], "cni0");
        cni[k] = ifindex(ioc_node[k], "cni0");
        node_ip(ip, sizeof ip, k, 1);
        add_addr(nl_node[k], cni[k], ip, mask);
        link_up(nl_node[k], cni[k]);
    }
    for (int k = 0; k < nnodes; k++)
        for (int j = 0; j < nnodes; j++)
            if (j != k) {
                node_ip(ip, sizeof ip, j, 0);
                snprintf(gw, sizeof gw, "172.18.%d.%d", (j + 2) / 256, (j + 2) % 256);
                add_route(nl_node[k], ip, mask, gw);
            }
    close(ul_fd);
    close(ul);
    close(ul_ioc);

    /* pods */
    double tp = now();
    for (int i = 0; i < npods; i++) {
        if (getenv("FLOOR_TRACE") && i % 100 == 0) { fprintf(stderr, "pods %d: %.3fs\n", i, now() - tp); }
        int k = i % nnodes, n = nodes_pods[k]++;
        snprintf(name, sizeof name, "%s.pod.p%d", prefix, i);
        snprintf(uts, sizeof uts, "/run/netlab/floor/%s/p%d.uts", prefix, i);
        snprintf(host, sizeof host, "p%d", i);
        new_ns(name, uts, host);
        int fd = self_netns_fd();
        char veth[IFNAMSIZ];
        snprintf(veth, sizeof veth, "veth%08x", i);
        add_veth(nl_node[k], veth, cni[k], "eth0", fd);
        close(fd);
        hairpin(nl_node[k], ifindex(ioc_node[k], veth));
        sysctl("net/ipv4/icmp_ratelimit", "0");
        /* no_ipv6: eth0 was made here, after default/disable_ipv6=1: it has IPv6 off already, as netlab's */
        if (!no_ipv6) sysctl("net/ipv6/conf/eth0/accept_dad", "0");    /* as the CNI bridge plugin's */
        sysctl("net/ipv4/conf/eth0/arp_notify", "1");
        int nl = nl_open(), ioc = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        link_up(nl, 1);
        int eth0 = ifindex(ioc, "eth0");
        link_up(nl, eth0);
        node_ip(ip, sizeof ip, k, n + 2);
        add_addr(nl, eth0, ip, mask);
        node_ip(gw, sizeof gw, k, 1);
        add_route(nl, "0.0.0.0", 0, gw);
        if (!getenv("FLOOR_NO_GARP")) announce(nl, ioc, eth0, "eth0");
        close(nl);
        close(ioc);
    }
    for (int k = 0; k < nnodes; k++) { close(nl_node[k]); close(ioc_node[k]); }
    return NULL;
}

static int up(void) {
    char dir[160];
    mkdir("/run/netns", 0755);
    mkdir("/run/netlab", 0700);
    mkdir("/run/netlab/floor", 0700);
    snprintf(dir, sizeof dir, "/run/netlab/floor/%s", prefix);
    if (mkdir(dir, 0700) && errno != EEXIST) die(dir);
    double t0 = now();
    pthread_t t;   /* a dedicated thread: it moves through the namespaces and ends */
    if (pthread_create(&t, NULL, build, NULL) || pthread_join(t, NULL)) die("thread");
    printf("{\"up_s\": %.6f}\n", now() - t0);
    return 0;
}

static void drop(const char *path) {
    if (umount2(path, MNT_DETACH) && errno != EINVAL && errno != ENOENT) die(path);
    if (unlink(path) && errno != ENOENT) die(path);
}

static int down(void) {
    char plen[80], path[512];
    snprintf(plen, sizeof plen, "%s.", prefix);
    double t0 = now();
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, plen, strlen(plen))) {
            snprintf(path, sizeof path, "/run/netns/%s", e->d_name);
            drop(path);
        }
    if (d) closedir(d);
    snprintf(path, sizeof path, "/run/netlab/floor/%s", prefix);
    d = opendir(path);
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            char p[800];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            drop(p);
        }
    if (d) { closedir(d); rmdir(path); }
    rmdir("/run/netlab/floor");   /* only if empty */
    printf("{\"down_s\": %.6f}\n", now() - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || strlen(argv[2]) > 40 || strchr(argv[2], '/')) {
        fprintf(stderr, "usage: floor up PREFIX PODS [NODES [MASK]] | floor down PREFIX\n");
        return 2;
    }
    snprintf(prefix, sizeof prefix, "%s", argv[2]);
    no_ipv6 = !(getenv("FLOOR_IPV6") && !strcmp(getenv("FLOOR_IPV6"), "1"));
    proc_sys_path = getenv("FLOOR_PROC_SYS") && !strcmp(getenv("FLOOR_PROC_SYS"), "1");
    if (!strcmp(argv[1], "up") && argc >= 4) {
        npods = atoi(argv[3]);
        if (argc > 4) nnodes = atoi(argv[4]);
        if (argc > 5) mask = atoi(argv[5]);
        if (npods < 1 || npods > 60000 || nnodes < 1 || nnodes > MAXNODES || mask < 17 || mask > 28
            || (nnodes << (32 - mask)) > 65536 || npods / nnodes + 3 > (1 << (32 - mask))) {
            fprintf(stderr, "floor: bad size\n"); return 2;
        }
        return up();
    }
    if (!strcmp(argv[1], "down")) return down();
    fprintf(stderr, "usage: floor up PREFIX PODS [NODES [MASK]] | floor down PREFIX\n");
    return 2;
}
