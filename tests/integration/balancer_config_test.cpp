// The stock balancer configurations of examples/cluster, HAProxy's and nginx's, run as they
// are (their addresses changed, and a stats socket added to HAProxy's for the test to read
// its health checks) in front of two real daemons: every request for a function, by funcd's
// API or Lambda's and whatever spelling of its name, reaches one node; names spread over
// both nodes; a node refusing before any code ran (503) runs nothing, and HAProxy has the
// other node serve the request; a killed node's functions are served by the other.
//
// The two daemons share no state yet, so each function is deployed on both, with an
// environment that names the node: its answer says where it ran, and each node's
// funcd_invocations_total says how often.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include <boost/crc.hpp>

#include "balancer_process.hpp"
#include "daemon_harness.hpp"
#include "exposition_parser.hpp"
#include "funcd/lambda_api/sigv4.hpp"

namespace funcd::testing {
namespace {

// Answers with the node it ran on (each node deploys it with its own BALANCER_NODE).
const char* kBalancerNodePy = R"(import os
def handler(event, context):
    return {"node": os.environ["BALANCER_NODE"]}
)";

// Both nodes get this key pair, as nodes sharing a state will.
const sigv4::Credential kBalancerAwsKey{"AKIABALANCERTEST0001", "balancer-test-secret-0123456789abcdefghij", ""};

// The nodes take few connections, so the test can hold all of a node's connections and
// have it refuse the next one with 503 before reading it, as funcd over its limit does.
constexpr int kBalancerMaxConnections = 4;

// A directory of the balancer's own (configuration, logs, pid), removed at the end. nginx's
// workers run as nobody when it is started as root, so they must be able to enter it.
class BalancerDir {
public:
    BalancerDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-balancer-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
        ::chmod(path_.c_str(), 0755);
    }
    ~BalancerDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    BalancerDir(const BalancerDir&) = delete;
    BalancerDir& operator=(const BalancerDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Every connection `port`'s node will take, held: each has sent part of a request head, so
// the node neither serves it nor closes it as idle, and answers any further connection 503
// at once, unread. Filled until a new connection is refused, then again after a pause until
// a round adds none, so a connection that held a slot for a moment (a health check) cannot
// leave one free.
class BalancerHeldConnections {
public:
    explicit BalancerHeldConnections(unsigned short port) {
        using namespace std::chrono_literals;
        for (int round = 0; round < 20; ++round) {
            const std::size_t before = fds_.size();
            fill(port);
            if (round > 0 && fds_.size() == before) return;
            std::this_thread::sleep_for(20ms);
        }
        release();
        throw std::runtime_error("the node's connections did not settle at its limit");
    }
    ~BalancerHeldConnections() { release(); }
    BalancerHeldConnections(const BalancerHeldConnections&) = delete;
    BalancerHeldConnections& operator=(const BalancerHeldConnections&) = delete;

    std::size_t held() const { return fds_.size(); }
    void release() {
        for (int fd : fds_) ::close(fd);
        fds_.clear();
    }

private:
    void fill(unsigned short port) {
        static const std::string partial = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        for (int i = 0; i < 4 * kBalancerMaxConnections; ++i) {
            const int fd = connect_loopback(port);
            ::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL);
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 300) > 0) {  // answered (503) and closed: the node is full
                ::close(fd);
                return;
            }
            fds_.push_back(fd);
        }
        throw std::runtime_error("the node took more connections than its limit");
    }

    std::vector<int> fds_;
};

// The two nodes, "a" and "b", each with the same functions.
struct BalancerNodes {
    static std::vector<std::string> args(const std::string& node) {
        return {"--node-id", "node-" + node, "--aws-access-key-id", kBalancerAwsKey.access_key_id,
                "--aws-secret-access-key", kBalancerAwsKey.secret_access_key, "--limit",
                "gateway.max_connections=" + std::to_string(kBalancerMaxConnections)};
    }

    Daemon a{args("a")};
    Daemon b{args("b")};

    Daemon& node(const std::string& name) { return name == "a" ? a : b; }
    static std::string other(const std::string& name) { return name == "a" ? "b" : "a"; }

    void deploy(const std::vector<std::string>& functions) {
        const std::string zip = python_zip(kBalancerNodePy);
        for (const auto& fn : functions)
            for (const char* n : {"a", "b"}) {
                const auto r = node(n).deploy(fn, python_settings({{"env", {{"BALANCER_NODE", n}}}}), zip);
                if (r.status != 201) throw std::runtime_error("deploying " + fn + ": " + r.body);
            }
    }

    // How often the node ran `function`, by its own count.
    static int runs(Daemon& d, const std::string& function) {
        const auto r = d.api("GET", "/metrics");
        if (r.status != 200) throw std::runtime_error("GET /metrics: " + std::to_string(r.status) + " " + r.body);
        const auto metrics = parse_exposition(r.body, false);
        return static_cast<int>(metrics.sum("funcd_invocations_total", {{"function", function}}));
    }
    // `runs` once it says `expected` (an invocation is counted as it completes), or as it is
    // after 5 s.
    static int runs_once(Daemon& d, const std::string& function, int expected) {
        int now = 0;
        eventually([&] { return (now = runs(d, function)) == expected; });
        return now;
    }
};

HttpResult balancer_invoke(unsigned short port, const std::string& function) {
    return http_request(port, "POST", "/v1/functions/" + function + "/invoke", "{}",
                        {{"Authorization", "Bearer " + Daemon::kToken}, {"Content-Type", "application/json"}});
}

// Lambda's Invoke, signed with SigV4 for the Host header http_request sends. `name` goes into
// the path as it is (percent-encoded by the caller).
HttpResult balancer_lambda_invoke(unsigned short port, const std::string& name) {
    const std::string target = "/2015-03-31/functions/" + name + "/invocations";
    const std::string body = "{}";
    const std::string date = sigv4::format_amz_date(std::chrono::system_clock::now());
    const std::vector<std::pair<std::string, std::string>> headers = {{"host", "127.0.0.1"}, {"x-amz-date", date}};
    const std::vector<std::string> signed_headers = {"host", "x-amz-date"};
    const sigv4::RequestView view{.method = "POST", .target = target, .headers = headers, .body = body};
    const std::string authorization =
        sigv4::authorization(view, signed_headers, kBalancerAwsKey, date, "us-east-1", "lambda");
    return http_request(port, "POST", target, body,
                        {{"X-Amz-Date", date}, {"Authorization", authorization}, {"Content-Type", "application/json"}});
}

// The node an answer came from, or what went wrong.
std::string balancer_node_of(const HttpResult& r) {
    if (r.status != 200) return "status " + std::to_string(r.status) + ": " + r.body;
    const auto doc = nlohmann::json::parse(r.body, nullptr, false);
    if (!doc.is_object() || !doc.contains("node")) return "answer without a node: " + r.body;
    return doc["node"].get<std::string>();
}

// The node nginx's consistent hash gives `key`, for upstream servers written as `servers`
// (its index there): 160 points per server, point i at CRC-32 of "HOST\0PORT" and the
// little-endian bytes of point i-1 (0 before the first), the key at CRC-32 of itself, served
// by the first point at or after it, wrapping around.
std::size_t balancer_nginx_home(const std::vector<std::string>& servers, const std::string& key) {
    std::vector<std::pair<std::uint32_t, std::size_t>> points;
    for (std::size_t s = 0; s < servers.size(); ++s) {
        const auto colon = servers[s].rfind(':');
        std::string base = servers[s].substr(0, colon);
        base.push_back('\0');
        base += servers[s].substr(colon + 1);
        std::uint32_t previous = 0;
        for (int i = 0; i < 160; ++i) {
            boost::crc_32_type crc;
            crc.process_bytes(base.data(), base.size());
            const std::array<unsigned char, 4> bytes = {
                static_cast<unsigned char>(previous), static_cast<unsigned char>(previous >> 8),
                static_cast<unsigned char>(previous >> 16), static_cast<unsigned char>(previous >> 24)};
            crc.process_bytes(bytes.data(), bytes.size());
            previous = crc.checksum();
            points.emplace_back(previous, s);
        }
    }
    std::sort(points.begin(), points.end());
    boost::crc_32_type crc;
    crc.process_bytes(key.data(), key.size());
    const auto at = std::lower_bound(points.begin(), points.end(), std::make_pair(crc.checksum(), std::size_t{0}));
    return at == points.end() ? points.front().second : at->second;
}

// What the balancer's log says of one request: the node that answered it, and whether it
// was first sent to another node that failed or refused it.
struct BalancerLogged {
    std::string node;
    std::vector<std::string> tried;  // nginx: every node tried, in order
    std::string statuses;            // nginx: what each answered
    bool retried_elsewhere = false;
};

enum class BalancerKind { haproxy, nginx };

// The whole check, the same for both balancers; only how each is started and what its log
// looks like differ.
class BalancerCheck {
public:
    explicit BalancerCheck(BalancerKind kind) : kind_(kind) {}

    void run() {
        using namespace std::chrono_literals;
        const std::string binary = balancer_binary(kind_ == BalancerKind::haproxy ? "haproxy" : "nginx");
        ASSERT_FALSE(binary.empty()) << (kind_ == BalancerKind::haproxy ? "haproxy" : "nginx")
                                     << " is not installed: scripts/setup --tests installs it";

        BalancerNodes nodes;
        addresses_ = {{"a", "127.0.0.1:" + std::to_string(nodes.a.port())},
                      {"b", "127.0.0.1:" + std::to_string(nodes.b.port())}};
        const std::vector<std::string> functions = choose_functions();
        nodes.deploy(functions);
        start(binary);
        if (kind_ == BalancerKind::haproxy) {
            // Its active checks (GET /healthz, 200 expected) pass on both nodes.
            const std::map<std::string, std::string> passed = {{"node1", "L7OK 200"}, {"node2", "L7OK 200"}};
            std::map<std::string, std::string> checks;
            EXPECT_TRUE(eventually([&] { return (checks = health_checks()) == passed; }, 10s))
                << "node1: " << checks["node1"] << ", node2: " << checks["node2"] << "\n" << output();
        }

        // Spread: each name has a home, and the names do not all share one.
        std::map<std::string, std::string> home;
        std::set<std::string> homes;
        for (const auto& fn : functions) {
            home[fn] = balancer_node_of(balancer_invoke(port_, fn));
            ASSERT_TRUE(home[fn] == "a" || home[fn] == "b") << fn << ": " << home[fn] << "\n" << output();
            if (!expected_home_.empty()) {
                EXPECT_EQ(home[fn], expected_home_[fn]) << fn;
            }
            homes.insert(home[fn]);
        }
        EXPECT_EQ(homes.size(), 2u) << "all of 8 names hashed to one node";

        // Affinity: a function's requests all reach its home, by either API and whatever the
        // spelling of its name (qualified, a partial or full ARN), and run there only.
        const std::string fn = functions.front();
        const std::string x = home[fn], y = BalancerNodes::other(x);
        for (int i = 0; i < 20; ++i) ASSERT_EQ(balancer_node_of(balancer_invoke(port_, fn)), x) << "invocation " << i;
        const std::string arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3A" + fn;
        for (const std::string& name : {fn, fn + "%3A%24LATEST", arn, arn + "%3A%24LATEST",
                                        "000000000000%3Afunction%3A" + fn})
            EXPECT_EQ(balancer_node_of(balancer_lambda_invoke(port_, name)), x) << name;
        EXPECT_EQ(BalancerNodes::runs_once(nodes.node(x), fn, 26), 26);
        EXPECT_EQ(BalancerNodes::runs(nodes.node(y), fn), 0);
        if (kind_ == BalancerKind::haproxy) {
            EXPECT_EQ(output().find(" is DOWN"), std::string::npos) << "a node was taken out:\n" << output();
        }

        // A refusal before any code ran: the home is at its connection limit and answers a
        // new connection 503 as it accepts it. HAProxy sends the request to the other node.
        // nginx passes that 503 on (nginx.conf says why), or sends the request to the other
        // node when the refusal reached it as a reset connection. Either way the refusing
        // node ran nothing, nothing ran twice, and the client's answer says whether it ran.
        const std::size_t logged_before = logged(fn).size();
        std::vector<HttpResult> answers;
        {
            BalancerHeldConnections full(nodes.node(x).port());
            ASSERT_GT(full.held(), 0u);
            for (int i = 0; i < 2; ++i) answers.push_back(balancer_invoke(port_, fn));
        }
        int served = 0;
        for (const auto& r : answers) {
            if (kind_ == BalancerKind::haproxy || r.status != 503) {
                EXPECT_EQ(balancer_node_of(r), y);
                ++served;
            } else {
                EXPECT_EQ(r.header("retry-after"), "1");
                EXPECT_NE(r.body.find("ServiceUnavailableException"), std::string::npos) << r.body;
            }
        }
        std::vector<BalancerLogged> lines;
        EXPECT_TRUE(eventually([&] { return (lines = logged(fn)).size() >= logged_before + 2; })) << output();
        for (std::size_t i = logged_before; i < lines.size() && i - logged_before < answers.size(); ++i) {
            const bool ran = answers[i - logged_before].status == 200;
            if (kind_ == BalancerKind::haproxy) {
                EXPECT_EQ(lines[i].node, y) << output();
                EXPECT_TRUE(lines[i].retried_elsewhere) << "not first sent to the refusing node:\n" << output();
            } else {
                const auto tried = ran ? std::vector<std::string>{x, y} : std::vector<std::string>{x};
                EXPECT_EQ(lines[i].tried, tried) << output();
                EXPECT_TRUE(lines[i].statuses.ends_with(ran ? "200" : "503")) << output();
            }
        }
        EXPECT_EQ(BalancerNodes::runs_once(nodes.node(y), fn, served), served);
        EXPECT_EQ(BalancerNodes::runs(nodes.node(x), fn), 26) << "the refusing node ran it";
        // Its home serves it again once it takes connections.
        EXPECT_EQ(balancer_node_of(balancer_invoke(port_, fn)), x);

        // Failover: with its home killed, the function is served by the other node, at once
        // or (bounded) once the balancer noticed.
        nodes.node(x).stop(SIGKILL);
        std::string last;
        EXPECT_TRUE(eventually([&] { return (last = balancer_node_of(balancer_invoke(port_, fn))) == y; }, 10s))
            << last;
        for (int i = 0; i < 10; ++i)
            ASSERT_EQ(balancer_node_of(balancer_invoke(port_, fn)), y) << "invocation " << i << "\n" << output();
        if (kind_ == BalancerKind::haproxy) {
            const std::string down = "Server funcd/" + server_name(x) + " is DOWN";
            EXPECT_TRUE(eventually([&] { return output().find(down) != std::string::npos; }, 10s)) << output();
        }
    }

private:
    // haproxy's servers are node1 and node2, in the order of the example.
    static std::string server_name(const std::string& node) { return node == "a" ? "node1" : "node2"; }

    // HAProxy places servers on its ring by their ids, fixed in the example, so these names
    // are spread whatever the ports. nginx places them by address, which changes every run:
    // the names are chosen by where its hash puts them, four on each node.
    std::vector<std::string> choose_functions() {
        std::vector<std::string> out;
        if (kind_ == BalancerKind::haproxy) {
            for (int i = 0; i < 8; ++i) out.push_back("fn-" + std::to_string(i));
            return out;
        }
        const std::vector<std::string> servers = {addresses_["a"], addresses_["b"]};
        std::map<std::string, int> count;
        for (int i = 0; out.size() < 8 && i < 1000; ++i) {
            const std::string fn = "fn-" + std::to_string(i);
            const std::string node = balancer_nginx_home(servers, fn) == 0 ? "a" : "b";
            if (count[node] == 4) continue;
            ++count[node];
            expected_home_[fn] = node;
            out.push_back(fn);
        }
        return out;
    }

    void start(const std::string& binary) {
        port_ = free_loopback_port();
        const std::string listen = "127.0.0.1:" + std::to_string(port_);
        if (kind_ == BalancerKind::haproxy) {
            const auto config = dir_.path() / "haproxy.cfg";
            // Plus a stats socket, for the test to read the health checks' results.
            const std::string log = "log stdout format raw local0 info";
            std::ofstream(config) << example_balancer_config("haproxy.cfg",
                                                     {{"bind :8080", "bind " + listen},
                                                      {"127.0.0.1:9001", addresses_["a"]},
                                                      {"127.0.0.1:9002", addresses_["b"]},
                                                      {log, log + "\n    stats socket " + stats_socket().string()}});
            process_.emplace(std::vector<std::string>{binary, "-f", config.string(), "-db"}, dir_.path() / "output.log",
                             port_);
        } else {
            const auto config = dir_.path() / "nginx.conf";
            std::ofstream(config) << example_balancer_config("nginx.conf", {{"listen 8080;", "listen " + listen + ";"},
                                                                    {"127.0.0.1:9001", addresses_["a"]},
                                                                    {"127.0.0.1:9002", addresses_["b"]}});
            process_.emplace(std::vector<std::string>{binary, "-p", dir_.path().string() + "/", "-c", config.string(),
                                                      "-g", "daemon off;"},
                             dir_.path() / "output.log", port_);
        }
    }

    std::string output() const {
        std::string text = process_ ? process_->output() : std::string();
        if (kind_ == BalancerKind::nginx)
            text += read_file(dir_.path() / "error.log") + read_file(dir_.path() / "access.log");
        return text;
    }

    std::filesystem::path stats_socket() const { return dir_.path() / "stats.sock"; }

    // HAProxy's last health check of each server ("node1" -> "L7OK 200"), or empty when the
    // stats socket does not answer.
    std::map<std::string, std::string> health_checks() const {
        std::map<std::string, std::string> out;
        for (auto& [server, row] : haproxy_servers(stats_socket()))
            out[server] = row["check_status"] + " " + row["check_code"];
        return out;
    }

    std::string node_at(const std::string& address) const {
        for (const auto& [node, a] : addresses_)
            if (a == address) return node;
        return "unknown address " + address;
    }

    // The balancer's log lines of /v1 invocations of `function`, in order.
    std::vector<BalancerLogged> logged(const std::string& function) const {
        std::vector<BalancerLogged> out;
        const std::string request = "\"POST /v1/functions/" + function + "/invoke HTTP/1.1\"";
        std::istringstream lines(kind_ == BalancerKind::haproxy ? process_->output()
                                                                : read_file(dir_.path() / "access.log"));
        // haproxy's httplog: "... funcd_api funcd/node2 0/0/0/1/1 200 ... 1/1/0/0/+1 0/0 "POST ...""
        // (the last of the five counts is the retries, "+" when the request left its node).
        static const std::regex haproxy_line(R"re( funcd/(node[12]) \S+ \d+ .* \d+/\d+/\d+/\d+/(\+?)\d+ \d+/\d+ ")re");
        static const std::regex nginx_line(R"re(upstream="([^"]*)" upstream_status="([^"]*)")re");
        for (std::string line; std::getline(lines, line);) {
            if (line.find(request) == std::string::npos) continue;
            BalancerLogged entry;
            std::smatch m;
            if (kind_ == BalancerKind::haproxy && std::regex_search(line, m, haproxy_line)) {
                entry.node = m[1] == "node1" ? "a" : "b";
                entry.retried_elsewhere = m[2] == "+";
            } else if (kind_ == BalancerKind::nginx && std::regex_search(line, m, nginx_line)) {
                std::istringstream tried(m[1].str());
                for (std::string address; std::getline(tried, address, ',');) {
                    address.erase(0, address.find_first_not_of(' '));
                    entry.tried.push_back(node_at(address));
                }
                entry.node = entry.tried.empty() ? std::string() : entry.tried.back();
                entry.statuses = m[2];
                entry.retried_elsewhere = entry.tried.size() > 1;
            }
            out.push_back(entry);
        }
        return out;
    }

    BalancerKind kind_;
    BalancerDir dir_;
    std::map<std::string, std::string> addresses_;      // node -> its address
    std::map<std::string, std::string> expected_home_;  // nginx: function -> node
    unsigned short port_ = 0;
    std::optional<BalancerProcess> process_;
};

TEST(BalancerConfig, HaproxyHashesOnTheFunctionRetriesRefusalsAndFailsOver) {
    BalancerCheck(BalancerKind::haproxy).run();
}

TEST(BalancerConfig, NginxHashesOnTheFunctionRetriesRefusalsAndFailsOver) {
    BalancerCheck(BalancerKind::nginx).run();
}

}  // namespace
}  // namespace funcd::testing
