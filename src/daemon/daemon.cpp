#include "funcd/daemon/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "funcd/common/coalesced_task.hpp"
#include "funcd/common/ids.hpp"
#include "funcd/common/install_layout.hpp"
#include "funcd/common/text.hpp"
#include "funcd/daemon/data_dir_lock.hpp"
#include "funcd/daemon/database_preflight.hpp"
#include "funcd/daemon/python_bytecode.hpp"
#include "funcd/daemon/runtime_probe.hpp"
#include "funcd/daemon/reactor_slots.hpp"
#include "funcd/daemon/service_notifier.hpp"
#include "funcd/daemon/service_watchdog.hpp"
#include "funcd/daemon/state_backend.hpp"
#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/dispatch/dispatcher.hpp"
#include "funcd/dispatch/event_store.hpp"
#include "funcd/event_sources/change_source_factory.hpp"
#include "funcd/event_sources/postgres_source_factory.hpp"
#include "funcd/event_sources/dispatcher_delivery.hpp"
#include "funcd/event_sources/event_source_mappings.hpp"
#include "funcd/gateway/event_source_api.hpp"
#include "funcd/gateway/control_api.hpp"
#include "funcd/gateway/function_changes.hpp"
#include "funcd/gateway/registry_sync.hpp"
#include "funcd/lambda_api/aws_credentials.hpp"
#include "funcd/lambda_api/code_locations.hpp"
#include "funcd/lambda_api/lambda_api.hpp"
#include "funcd/gateway/http_server.hpp"
#include "funcd/logs/function_log.hpp"
#include "funcd/metering/usage_store.hpp"
#include "funcd/observe/metrics.hpp"
#include "funcd/observe/metrics_endpoint.hpp"
#include "funcd/pool/pool_manager.hpp"
#include "funcd/registry/code_store.hpp"
#include "funcd/registry/registry.hpp"
#include "funcd/sandbox/namespace_launcher.hpp"
#include "funcd/sandbox/process_launcher.hpp"
#include "funcd/state/cluster_membership.hpp"
#include "funcd/state/pg_listener.hpp"
#include "funcd/state/provisioned_placement.hpp"
#include "funcd/state/postgres_function_store.hpp"

namespace funcd {
namespace {

// Threads for short blocking work (SQLite queries and commits: async accepts, usage queries,
// settings) so the loop never waits on disk.
constexpr std::size_t kBlockingThreads = 2;
// Threads for work that grows with a request's size (parsing, base64-decoding, unpacking and
// storing code; hashing large signed bodies; serving code downloads), kept apart so a burst
// of deploys cannot delay the short work above. Two: a deploy is CPU-bound and the hosts
// funcd targets have a few cores.
constexpr std::size_t kBulkThreads = 2;
// On SIGTERM, in-flight invocations get this long to finish before their workers are killed.
constexpr auto kShutdownGrace = std::chrono::seconds(30);
// After killing workers, how long to wait for their exits to be observed.
constexpr auto kWorkerExitWait = std::chrono::seconds(5);
constexpr auto kShutdownPoll = std::chrono::milliseconds(10);
// With shared state, how often a node reads the shared functions' changes without being
// notified: the backstop for notifications lost while its listener was disconnected. One
// second keeps a deploy's reach within the second docs/scaling.md promises even then, at the
// cost of one small read transaction per second per node.
constexpr auto kStatePollInterval = std::chrono::seconds(1);
// Threads that launch workers. A launch mostly waits on the kernel (clone, cgroup attach
// waiting for an RCU grace period, the child's setup), so a few threads overlap a burst's
// cold starts even on 2 cores; bench/launch_latency measures 1 to 8.
constexpr std::size_t kLaunchThreads = 4;
// Default memory budget: this share of the host's RAM, leaving the rest to the daemon,
// the page cache and the host's own services.
constexpr double kDefaultMemoryBudgetShare = 0.8;

std::int64_t default_memory_budget_mb() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page_size <= 0) {
        spdlog::warn("memory budget: cannot read the host's RAM size (errno {}); using 4096 MB", errno);
        return 4096;
    }
    const double mb = static_cast<double>(pages) * static_cast<double>(page_size) / (1 << 20);
    return static_cast<std::int64_t>(mb * kDefaultMemoryBudgetShare);
}

// Every worker holds a few descriptors in the daemon (its Runtime API socket and
// connection, pidfd, output pipe, exit pipe, cgroup files), and a burst holds a client
// connection per invocation: the usual soft limit of 1024 would cap a burst near 150.
void raise_descriptor_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        spdlog::warn("rlimit: getrlimit(RLIMIT_NOFILE) failed: {} (errno {})", std::strerror(errno), errno);
        return;
    }
    if (rl.rlim_cur >= rl.rlim_max) return;
    const rlim_t before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
        spdlog::warn("rlimit: raising RLIMIT_NOFILE to {} failed: {} (errno {})", rl.rlim_max, std::strerror(errno),
                     errno);
    else
        spdlog::debug("rlimit: RLIMIT_NOFILE {} -> {}", before, rl.rlim_cur);
}

struct SandboxChoice {
    std::unique_ptr<SandboxLauncher> launcher;
    // How the memory budget charges workers: by what they use only when their common
    // cgroup holds them to the budget (see MemoryBudget).
    MemoryAdmission admission = MemoryAdmission::declared;
};

// The sandbox unless explicitly turned off; never silently unsandboxed. Its workers'
// cgroups get a common memory limit of `budget_mb` (the fence) where that can be set.
SandboxChoice make_launcher(const DaemonOptions& opts, const std::filesystem::path& runtime_dir,
                            std::int64_t budget_mb) {
    const bool sandbox = opts.sandbox;
    if (!sandbox) {
        spdlog::warn("sandbox: OFF (--sandbox off). Functions run as plain processes with the daemon's user, "
                     "its files and its network. Use this for development only, never with untrusted code.");
        spdlog::info("memory admission: declared (no cgroups without the sandbox): each worker is charged its "
                     "function's memory_mb");
        return {std::make_unique<ProcessLauncher>(), MemoryAdmission::declared};
    }
    std::string why;
    if (!NamespaceLauncher::supported(&why))
        throw std::runtime_error("the sandbox cannot run on this host (" + why +
                                 "); run funcd as root or enable unprivileged user namespaces "
                                 "(sysctl kernel.unprivileged_userns_clone=1), or pass --sandbox off "
                                 "to run functions unisolated (development only)");
    auto cgroups = CgroupManager::detect();
    // Before any worker of ours: what killed daemons left behind (their workers died with them).
    if (cgroups)
        if (const std::size_t n = cgroups->remove_dead_daemons_cgroups())
            spdlog::info("cgroup: removed {} worker cgroups left by daemons that are gone", n);
    MemoryAdmission admission = MemoryAdmission::declared;
    if (!cgroups) {
        spdlog::warn("memory admission: declared: without cgroups the workers' memory cannot be fenced, so each "
                     "worker is charged its function's memory_mb");
    } else if (cgroups->fence_memory(static_cast<std::uint64_t>(budget_mb) << 20)) {
        admission = MemoryAdmission::observed;
    } else {
        spdlog::warn("memory admission: declared: the workers' common cgroup cannot be limited to the memory budget "
                     "({} MB; the warning above says why), so each worker is charged its function's memory_mb",
                     budget_mb);
    }
    const std::string cgroup_text = cgroups ? cgroups->describe() : std::string("no cgroups");
    auto seccomp = SeccompPolicy::build();
    const std::size_t filter_size = seccomp.instructions();
    SandboxOptions options = SandboxOptions::for_daemon(::getpid());
    options.runtime_templates = opts.runtime_templates;
    options.runtime_dir = runtime_dir;
    auto launcher = std::make_unique<NamespaceLauncher>(std::move(options), std::move(cgroups),
                                                        std::move(seccomp));
    spdlog::info("sandbox: namespaces (user, pid, mount, net, ipc, uts, cgroup), pivot_root, seccomp ({} BPF "
                 "instructions), {}",
                 filter_size, cgroup_text);
    if (!launcher->unenforced().empty()) {
        std::string list;
        for (const auto& item : launcher->unenforced()) list += "\n  - " + item;
        spdlog::warn("sandbox: this host does not let funcd enforce:{}", list);
    }
    return {std::move(launcher), admission};
}

// --runtime-dir, else the installed runtimes beside the binary, else the checkout's.
std::filesystem::path runtime_dir_for(const DaemonOptions& options) {
    if (!options.runtime_dir.empty()) return std::filesystem::absolute(options.runtime_dir);
    std::string looked;
    std::filesystem::path dir = find_runtime_dir(running_program(), &looked);
    if (dir.empty())
        throw std::runtime_error("cannot find funcd's runtimes (looked in " + looked + "); pass --runtime-dir DIR");
    return dir;
}

// How a worker on the host's network reaches the listener: a wildcard address is
// reached on loopback.
std::string endpoint_url(const std::string& host, unsigned short port) {
    std::string h = host;
    if (h == "0.0.0.0" || h.empty()) h = "127.0.0.1";
    if (h == "::") h = "::1";
    if (h.find(':') != std::string::npos) h = "[" + h + "]";
    return fmt::format("http://{}:{}", h, port);
}

// The host's name: a node's id when --node-id is not given.
std::string host_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) {
        spdlog::warn("cluster: gethostname failed: {} (errno {}); the node is named localhost", std::strerror(errno),
                     errno);
        return "localhost";
    }
    return host;
}

// What this node says of itself among the nodes (cluster_membership.hpp): its id (run_daemon
// sets it: --node-id, else the host's name); --advertise-url, else http:// and the address
// it listens at (the host's name for a wildcard address).
NodeReport self_report(const DaemonOptions& opts, unsigned short port) {
    NodeReport r;
    r.id = opts.node_id;
    if (!opts.advertise_url.empty()) {
        r.advertise_url = opts.advertise_url;
    } else {
        // Unlike a worker on the host's network (endpoint_url), another host cannot reach a
        // wildcard address on its own loopback: it gets the host's name.
        const bool wildcard = opts.listen_host == "0.0.0.0" || opts.listen_host == "::";
        r.advertise_url = endpoint_url(wildcard ? host_name() : opts.listen_host, port);
    }
    r.version = FUNCD_VERSION;
    r.started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    return r;
}

}  // namespace

std::string load_or_create_api_token(const DaemonOptions& options) {
    if (options.api_token_file) {
        std::ifstream in(*options.api_token_file);
        if (!in) throw std::runtime_error("cannot read the API token file " + options.api_token_file->string());
        std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        token = trim(token);
        if (token.empty()) throw std::runtime_error("the API token file " + options.api_token_file->string() + " is empty");
        return token;
    }
    if (options.api_token) return *options.api_token;

    const auto path = options.data_dir / "api-token";
    if (std::ifstream in(path); in) {
        std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        token = trim(token);
        if (!token.empty()) {
            spdlog::info("api token: using {}", path.string());
            return token;
        }
    }
    std::string token = random_hex(32);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(errno));
    std::string line = token + "\n";
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::fchmod(fd, 0600);
    ::fsync(fd);
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write " + path.string());
    spdlog::info("api token: created {} (send it as 'Authorization: Bearer <token>')", path.string());
    return token;
}

int run_daemon(const DaemonOptions& options) {
    // First: it takes NOTIFY_SOCKET and WATCHDOG_* out of the environment before any thread
    // or child exists.
    const ServiceNotifier notifier = ServiceNotifier::from_environment();
    ::signal(SIGPIPE, SIG_IGN);
    raise_descriptor_limit();
    const auto data_dir = std::filesystem::absolute(options.data_dir);
    std::filesystem::create_directories(data_dir);
    // It holds the database (every function's environment), the keys and the logs: the
    // daemon's user only. Workers reach their code and layers through descriptors the
    // sandbox opens before it gives up the daemon's identity.
    if (::chmod(data_dir.c_str(), 0700) != 0)
        spdlog::warn("data dir: chmod 0700 {} failed: {} (errno {})", data_dir.string(), std::strerror(errno), errno);
    const DataDirLock data_dir_lock(data_dir);
    check_database(data_dir / "funcd.db");
    std::filesystem::create_directories(data_dir / "code");

    DaemonOptions opts = options;
    opts.data_dir = data_dir;
    if (opts.node_id.empty()) opts.node_id = host_name();
    const std::string token = load_or_create_api_token(opts);
    const AwsCredentials aws = load_or_create_aws_credentials(data_dir, opts.aws_access_key_id, opts.aws_secret_access_key);
    const sigv4::Verifier verifier({aws.admin, aws.invoker});

    boost::asio::io_context io(1);
    reserve_reactor_slots(io);
    boost::asio::thread_pool blocking(kBlockingThreads);
    boost::asio::thread_pool bulk(kBulkThreads);

    CodeStore code(data_dir / "code");
    LayerViews layer_views(data_dir / "opt", code);
    const EnvCipher env_cipher = EnvCipher::load(data_dir / "env.keys");
    // Functions, layers, code, mappings: this host's funcd.db, or the database nodes share
    // (--state). Before the registry (see open_state_backend).
    StateBackend state = open_state_backend(opts, data_dir, env_cipher);
    MappingStore& mapping_store = *state.mappings;
    Registry registry(*state.functions, code, layer_views, opts.max_concurrency, env_cipher, state.shared_code.get());
    UsageStore usage(data_dir / "funcd.db", data_dir / "usage.journal",
                     {opts.limits.metering, opts.usage_retention, state.shared_usage.get()});
    LogDirectory logs(io, data_dir / "logs", opts.limits.output, opts.limits.logs);
    const std::int64_t memory_budget_mb = opts.memory_budget_mb.value_or(default_memory_budget_mb());
    SandboxChoice sandboxing = make_launcher(opts, runtime_dir_for(opts), memory_budget_mb);
    std::unique_ptr<SandboxLauncher> launcher = std::move(sandboxing.launcher);
    boost::asio::thread_pool launch_threads(kLaunchThreads);
    MemoryBudget memory(memory_budget_mb, sandboxing.admission);
    // What /metrics counts; with --metrics off nothing is handed out and nothing counts.
    observe::Metrics metrics;
    observe::Metrics* const counting = opts.metrics ? &metrics : nullptr;
    PoolEnvironment env{io, *launcher, logs, runtime_dir_for(opts), probe_runtimes(opts.python, opts.node),
                        opts.init_timeout};
    env.runtimes.allow_preload(opts.preload_modules);
    // Before any worker starts, provisioned ones included: workers cannot write the cache.
    for (const auto& python : env.runtimes.python_paths()) compile_python_runtime(python, env.runtime_dir);
    env.launch_threads = &launch_threads;
    env.memory = &memory;
    env.region = opts.region;
    env.account_id = aws.account_id;
    env.runtime_api = opts.limits.runtime_api;
    // Nodes sharing the state keep a function's provisioned workers where its invocations go.
    ProvisionedPlacement placement(opts.node_id, state.shared());
    env.provisioned_share = [&placement](const std::string& function, int requested) {
        return placement.share(function, requested);
    };
    env.provisioned_elsewhere = [&placement](const std::string& function, const std::string& label) {
        return placement.ready_elsewhere(function, label);
    };
    env.launch_duration = counting ? &counting->launch_duration : nullptr;
    PoolManager pools(env);
    Dispatcher dispatcher(io, registry, pools, usage, {opts.max_concurrency, opts.queue_wait, opts.metering},
                          counting ? &counting->functions : nullptr);
    env.on_worker_available = [&dispatcher] { dispatcher.capacity_freed(); };
    memory.on_release([&dispatcher] { dispatcher.capacity_freed(); });
    spdlog::info("limits: max_concurrency={} memory_budget_mb={} memory_admission={} queue_wait_ms={} metering={} "
                 "metrics={}",
                 opts.max_concurrency, memory.limit_mb(), to_string(memory.admission()), opts.queue_wait.count(),
                 opts.metering ? "on" : "off", opts.metrics ? "on" : "off");
    if (!opts.metering) spdlog::warn("metering: OFF (--metering off); invocations leave no usage records");
    EventStore& event_store = *state.events;
    AsyncInvoker async(io, blocking, event_store, dispatcher, registry,
                       fmt::format("arn:aws:lambda:{}:{}:function:", env.region, env.account_id), opts.limits.async,
                       counting);
    async.start();
    EventApi events(io, blocking, registry, event_store, async);
    // Where a mapping's ChangeSource comes from: PostgreSQL's logical replication (the
    // publication and slot made at a mapping's creation, dropped at its deletion).
    PostgresSourceFactory change_sources(io, opts.limits.event_sources);
    DispatcherDelivery mapping_delivery(io, blocking, dispatcher, async, event_store, mapping_store, env.region,
                                        env.account_id, counting);
    EventSourceMappings mappings(io, blocking, mapping_store, change_sources, mapping_delivery,
                                 {env.region, env.account_id, opts.limits.event_sources, {}, opts.node_id},
                                 state.shared() ? state.leases.get() : nullptr);
    mappings.start();
    // Mappings of a function deleted while the daemon was stopping go now.
    for (const auto& m : mappings.list())
        if (!registry.find(m.config.function)) mappings.function_deleted(m.config.function);
    EventSourceApi event_source_api(registry, mappings);
    TriggerStore& trigger_store = *state.triggers;
    Scheduler scheduler(io, blocking, async, trigger_store, *state.leases, opts.node_id, env.region, env.account_id);
    FileTriggers file_triggers(io, blocking, async, env.region);
    env.adjust_spec = [&file_triggers](const FunctionConfig& c, WorkerSpec& spec) { file_triggers.adjust_spec(c, spec); };
    TriggerApi triggers(io, blocking, registry, trigger_store, scheduler, file_triggers, pools, opts.node_id);
    triggers.start();
    HttpTrigger http_trigger(io, blocking, registry, dispatcher, trigger_store, token, verifier,
                             counting ? &counting->functions : nullptr);
    http_trigger.start();
    FunctionChanges changes(io, blocking, registry, pools, dispatcher, events, triggers, mappings, logs,
                            counting ? &counting->functions : nullptr);
    // Code URLs stay valid across a restart: their key comes from the operator's secret.
    CodeLocations locations(io, bulk, code, sha256_hex("funcd code locations\n" + aws.admin.secret_access_key));
    LambdaApi lambda(io, blocking, bulk, registry, pools, dispatcher, async, event_store, changes, mappings, locations,
                     verifier,
                     env.runtimes, aws, {opts.max_concurrency, opts.limits.runtime_api.stream_buffer_bytes});
    const observe::MetricsEndpoint metrics_endpoint(io, blocking, metrics,
                                                    {dispatcher, pools, async, memory, logs, usage, &mappings, launcher.get()},
                                                    opts.prices);
    LogsApi logs_api(io, blocking, registry, usage, logs);
    // Changes other nodes make to the shared functions: read at each notification, and every
    // kStatePollInterval in case one was lost. On the bulk threads: a change may bring code to
    // fetch and unpack.
    RegistrySync registry_sync(io, bulk, registry, changes);
    // Schedules, file triggers, routes and event source mappings other nodes change: read
    // again the same way.
    CoalescedTask trigger_sync(blocking, "triggers: cannot read the shared state's definitions", [&] {
        triggers.reload();
        http_trigger.reload();
        mappings.reload();
    });
    std::optional<PgListener> state_listener;
    if (state.shared())
        state_listener.emplace(state.shared_url, kStateChannel, kStatePollInterval, [&registry_sync, &trigger_sync] {
            registry_sync.refresh();
            trigger_sync.request();
        });
    // This node among the nodes sharing its state: on a single host, itself alone.
    ClusterMembership membership(
        io, blocking, *state.nodes,
        [&pools, &dispatcher, &placement, &registry] {
            nlohmann::json load{{"workers", pools.live_workers()}, {"running", dispatcher.running_total()}};
            const auto placed = [&registry](const std::string& function) {
                const FunctionRecordPtr fn = registry.find(function);
                if (!fn) return false;
                for (const auto& v : fn->all_versions())
                    if (v->config.concurrency.provisioned > 0) return true;
                return false;
            };
            load.update(placement.report(pools.submitted(), pools.provisioned_ready(), placed,
                                         std::chrono::steady_clock::now()));
            return load;
        },
        // Each pool keeps its provisioned share at its next tick (every kReapInterval).
        [&dispatcher, &placement](std::vector<NodeRecord> live) {
            dispatcher.set_live_nodes(static_cast<int>(live.size()));
            placement.update(live);
        });
    ClusterApi cluster_api(membership);
    ControlApi api(io, blocking, bulk, registry, pools, dispatcher, usage, events, triggers, event_source_api,
                   http_trigger, changes, lambda, locations, env.runtimes, opts.prices, token, logs_api, cluster_api,
                   counting ? &metrics_endpoint : nullptr);
    pools.on_pool_drained([&changes] { changes.collect_code_garbage(); });
    changes.collect_code_garbage();  // leftovers of a crash mid-deploy or mid-delete

    // Every deployed function has its series from the start, zeros until it is invoked.
    if (counting)
        for (const auto& fn : registry.list()) counting->functions.add(fn->name);

    http::ServerOptions server_options;
    server_options.host = opts.listen_host;
    server_options.port = opts.listen_port;
    server_options.limits = opts.limits.gateway;
    http::Server server(
        io, server_options, [&api](const http::Request& head) { return api.check_head(head); },
        [&api](http::Request req, http::Responder respond) { api.handle(std::move(req), std::move(respond)); },
        &ControlApi::too_large);
    server.listen();
    // Scrapers without the API token: a listener of its own, with the same connection discipline.
    std::optional<http::Server> metrics_server;
    if (opts.metrics_listen_host) {
        http::ServerOptions metrics_options;
        metrics_options.host = *opts.metrics_listen_host;
        metrics_options.port = opts.metrics_listen_port;
        metrics_options.limits = opts.limits.metrics;
        metrics_server.emplace(
            io, metrics_options,
            [&metrics_endpoint](const http::Request& head) { return metrics_endpoint.check_head(head); },
            [&metrics_endpoint](http::Request req, http::Responder respond) {
                metrics_endpoint.handle(req, std::move(respond));
            });
        metrics_server->listen();
        spdlog::info("metrics: /metrics without a token at {}:{}", *opts.metrics_listen_host, metrics_server->port());
    }
    // Functions on the host's network can reach funcd: they get Lambda's endpoint and a key
    // that may only invoke, so they can call other functions with an AWS SDK, as on Lambda.
    env.host_network_env = {"AWS_ENDPOINT_URL_LAMBDA=" + endpoint_url(opts.listen_host, server.port()),
                            "AWS_ACCESS_KEY_ID=" + aws.invoker.access_key_id,
                            "AWS_SECRET_ACCESS_KEY=" + aws.invoker.secret_access_key};
    // Provisioned workers come back after a restart (now that their environment is complete).
    for (const auto& fn : registry.list()) pools.sync(fn->name, fn->all_versions());
    spdlog::info("funcd: listening on {}:{} data_dir={} runtime_dir={}", opts.listen_host, server.port(),
                 data_dir.string(), env.runtime_dir.string());
    // Ready once the loop runs, which is when the listener answers: a unit ordered after
    // funcd.service (Type=notify) may connect as soon as the manager hears this.
    const std::string listening = fmt::format("listening on {}:{}", opts.listen_host, server.port());
    boost::asio::post(io, [&notifier, &listening] { notifier.ready(listening); });
    ServiceWatchdog watchdog(io, notifier);
    watchdog.start();
    membership.start(self_report(opts, server.port()));
    scheduler.start();
    if (state_listener) state_listener->start();
    if (state.shared_usage) state.shared_usage->start();

    // Graceful stop: refuse new work, let in-flight invocations answer, end all workers.
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::steady_timer shutdown_timer(io);
    std::function<void()> wait_for_workers;
    std::function<void()> wait_for_invocations;
    auto deadline = std::chrono::steady_clock::now();
    wait_for_workers = [&] {
        // Follow streams end with the daemon: their last event is sent before it stops.
        if ((pools.live_workers() == 0 && logs_api.streams_open() == 0) ||
            std::chrono::steady_clock::now() >= deadline) {
            if (pools.live_workers() > 0) spdlog::warn("funcd: {} workers did not exit in time", pools.live_workers());
            io.stop();
            return;
        }
        shutdown_timer.expires_after(kShutdownPoll);
        shutdown_timer.async_wait([&](const boost::system::error_code&) { wait_for_workers(); });
    };
    wait_for_invocations = [&] {
        if (dispatcher.in_flight() == 0 || std::chrono::steady_clock::now() >= deadline) {
            if (dispatcher.in_flight() > 0)
                spdlog::warn("funcd: {} invocations still running after {} s; ending their workers",
                             dispatcher.in_flight(), kShutdownGrace.count());
            pools.kill_all();
            deadline = std::chrono::steady_clock::now() + kWorkerExitWait;
            wait_for_workers();
            return;
        }
        shutdown_timer.expires_after(kShutdownPoll);
        shutdown_timer.async_wait([&](const boost::system::error_code&) { wait_for_invocations(); });
    };
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        spdlog::info("funcd: signal {} received; stopping ({} invocations in flight)", sig, dispatcher.in_flight());
        notifier.stopping(fmt::format("stopping: {} invocations in flight", dispatcher.in_flight()));
        server.stop();
        if (metrics_server) metrics_server->stop();
        logs.end_followers();
        dispatcher.stop_accepting();
        async.stop();
        mappings.stop();
        membership.stop();
        scheduler.stop();
        if (state_listener) state_listener->stop();
        deadline = std::chrono::steady_clock::now() + kShutdownGrace;
        wait_for_invocations();
    });

    io.run();
    blocking.join();
    bulk.join();
    launch_threads.join();
    usage.stop();  // bounded by metering.storage_timeout_ms; what is left stays in the journal
    if (state.shared_usage) state.shared_usage->stop();  // ships what the last commits added
    logs.flush_all();
    spdlog::info("funcd: stopped");
    return 0;
}

}  // namespace funcd
