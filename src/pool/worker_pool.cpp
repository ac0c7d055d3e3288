#include "funcd/pool/worker_pool.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include <fmt/format.h>

#include "funcd/pool/node_launch.hpp"

namespace funcd {
namespace {

using Clock = Worker::Clock;

void erase_worker(std::vector<std::shared_ptr<Worker>>& v, const Worker& w) {
    std::erase_if(v, [&](const auto& p) { return p.get() == &w; });
}

}  // namespace

WorkerPool::WorkerPool(PoolEnvironment& env, FunctionPtr fn, std::function<void(WorkerPool&)> on_drained)
    : env_(env),
      fn_(std::move(fn)),
      on_drained_(std::move(on_drained)),
      log_(env.logs.open(fn_->config.name)),
      estimate_(fn_->config.memory_mb, kInitialWorkerEstimateMb) {
    spec_ = std::make_shared<const WorkerSpec>(make_spec(false));
    provisioned_spec_ = std::make_shared<const WorkerSpec>(make_spec(true));
    if (spec_->from_template) {
        template_charged_ = env_.launcher.hold_template(*spec_->from_template) && env_.memory;
        if (template_charged_)
            env_.memory->hold_template(spec_->from_template->id(), template_charge_mb(*spec_->from_template));
    }
    if (fn_->config.runtime == Runtime::nodejs)
        if (auto why = node_template_refusal(fn_->config.env))
            spdlog::info("pool: function={} version={} starts its workers without a runtime template: {}",
                         fn_->config.name, fn_->label(), *why);
    settings_.init_timeout = env_.init_timeout;
    settings_.runtime_api = env_.runtime_api;
    // A published version's ARN is qualified with its number, as Lambda's is.
    settings_.function_arn =
        fmt::format("arn:aws:lambda:{}:{}:function:{}{}", env_.region, env_.account_id, fn_->config.name,
                    fn_->is_latest() ? std::string() : ":" + fn_->label());
    // Lambda logs the runtime version a worker starts with; funcd's may differ from the
    // identifier (python3.12 on a host whose Python is 3.11, nodejs18.x on the host's
    // Node.js 20), which is why it is said.
    const std::string id = fn_->config.runtime_name();
    settings_.runtime_version = env_.runtimes.runtime_version(id);
    settings_.runtime_version_arn =
        fmt::format("arn:aws:lambda:{}::runtime:{}", env_.region, env_.runtimes.runtime_version_hash(id));
    keep_alive_ = make_policy();
    decision_.keep_alive = std::chrono::seconds(fn_->config.keep_alive_s);
}

WorkerPool::~WorkerPool() {
    kill_all();
    if (spec_->from_template) {
        env_.launcher.release_template(*spec_->from_template);
        if (template_charged_) env_.memory->release_template(spec_->from_template->id());
    }
}

std::unique_ptr<KeepAlivePolicy> WorkerPool::make_policy() const {
    if (env_.keep_alive_policy) return env_.keep_alive_policy(fn_->config);
    const std::chrono::seconds fixed(fn_->config.keep_alive_s);
    return fn_->config.keep_alive_mode == KeepAliveMode::adaptive ? make_hybrid_keep_alive(fixed)
                                                                   : make_fixed_keep_alive(fixed);
}

WorkerSpec WorkerPool::make_spec(bool provisioned) const {
    const FunctionConfig& c = fn_->config;
    const SandboxPaths inside = env_.launcher.paths_for(fn_->code_dir, env_.runtime_dir, fn_->opt_dir);
    WorkerSpec spec;
    spec.function_name = c.name;
    spec.version = fn_->version;
    spec.memory_mb = c.memory_mb;
    spec.code_dir = fn_->code_dir;
    spec.runtime_dir = env_.runtime_dir;
    spec.opt_dir = fn_->opt_dir;
    spec.ephemeral_storage_mb = c.ephemeral_storage_mb;
    spec.host_network = c.network == NetworkMode::host;
    if (c.runtime == Runtime::python3) {
        // -I: ignore PYTHON* variables and the user's site directory; -u: unbuffered,
        // so output lines reach the log tagged with the invocation that printed them.
        spec.argv = {env_.runtimes.python_for(c.runtime_name()).path, "-I", "-u",
                     inside.runtime_root + "/python/bootstrap.py"};
        // The same interpreter with the same flags, started once and forked (runtime_template.hpp).
        // A function that preloads modules has a template with them (shared with the
        // functions that preload the same ones).
        spec.from_template = TemplateKey{TemplateRuntime::python, spec.argv[0], {"-I", "-u"}, c.preload};
    } else if (c.runtime == Runtime::nodejs) {
        spec.argv = {env_.runtimes.node().path};
        for (auto& flag : node_heap_flags(c.memory_mb, c.env)) spec.argv.push_back(std::move(flag));
        // One template per heap size: V8 sizes the heap once, as it starts.
        if (!node_template_refusal(c.env))
            spec.from_template =
                TemplateKey{TemplateRuntime::node, spec.argv[0], {spec.argv.begin() + 1, spec.argv.end()}, {}};
        spec.argv.push_back(inside.runtime_root + "/nodejs/bootstrap.js");
    } else {
        // Lambda runs /var/task/bootstrap, else a layer's /opt/bootstrap.
        std::error_code ec;
        const bool in_layers = !std::filesystem::exists(fn_->code_dir / "bootstrap", ec) && !fn_->opt_dir.empty() &&
                               std::filesystem::exists(fn_->opt_dir / "bootstrap", ec);
        spec.argv = {(in_layers ? inside.opt_root : inside.task_root) + "/bootstrap"};
    }
    // Lambda's PATH and LD_LIBRARY_PATH end with the layers' bin/ and lib/.
    std::string path = "/usr/local/bin:/usr/bin:/bin";
    std::string library_path = inside.task_root + "/lib";
    if (!inside.opt_root.empty()) {
        path += ":" + inside.opt_root + "/bin";
        library_path += ":" + inside.opt_root + "/lib";
    }
    const std::string label = fn_->label();
    // Lambda's environment (docs: "Defined runtime environment variables"), then the function's own.
    spec.env = {
        "AWS_LAMBDA_FUNCTION_NAME=" + c.name,
        "AWS_LAMBDA_FUNCTION_VERSION=" + label,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + std::to_string(c.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME=" + (c.recorded.log_group.empty() ? "/aws/lambda/" + c.name : c.recorded.log_group),
        "AWS_LAMBDA_LOG_STREAM_NAME=" + label + "/" + c.name,
        std::string("AWS_LAMBDA_INITIALIZATION_TYPE=") + (provisioned ? "provisioned-concurrency" : "on-demand"),
        "AWS_EXECUTION_ENV=AWS_Lambda_" + c.runtime_name(),
        "AWS_REGION=" + env_.region,
        "AWS_DEFAULT_REGION=" + env_.region,
        "_HANDLER=" + c.handler,
        "LAMBDA_TASK_ROOT=" + inside.task_root,
        "LAMBDA_RUNTIME_DIR=" + inside.runtime_root,
        "TZ=:UTC",
        "LANG=C.UTF-8",
        "PATH=" + path,
        "LD_LIBRARY_PATH=" + library_path,
        "HOME=/tmp",
        // LoggingConfig, for the runtime's own log calls (console.*, Python's logging).
        "AWS_LAMBDA_LOG_FORMAT=" + std::string(to_string(c.logging.format)),
    };
    if (c.logging.json())
        spec.env.push_back("AWS_LAMBDA_LOG_LEVEL=" + std::string(to_string(c.logging.application_level)));
    // Where funcd's runtimes find the layers (the Python one's python/ directories).
    if (!inside.opt_root.empty()) spec.env.push_back(std::string(kLayersRootVariable) + "=" + inside.opt_root);
    // Node reads NODE_PATH only as it starts: the launcher sets it, as Lambda's bootstrap does.
    // The sandbox always has an /opt; its layer directories are searched only when there are layers.
    if (c.runtime == Runtime::nodejs)
        if (auto p = node_path(c.env, env_.runtimes.node_major(), fn_->opt_dir.empty() ? "" : inside.opt_root,
                               inside.task_root))
            spec.env.push_back("NODE_PATH=" + *p);
    if (spec.host_network)
        spec.env.insert(spec.env.end(), env_.host_network_env.begin(), env_.host_network_env.end());
    for (const auto& [k, v] : c.env) spec.env.push_back(k + "=" + v);
    if (env_.adjust_spec) env_.adjust_spec(c, spec);
    return spec;
}

std::optional<std::int64_t> WorkerPool::charge() {
    if (!env_.memory) return 0;
    const std::int64_t mb = env_.memory->new_worker_mb(estimate_);
    if (!env_.memory->try_charge(mb, this)) return std::nullopt;
    return mb;
}

std::int64_t WorkerPool::discharge(const Worker& w) {
    auto it = charged_.find(&w);
    if (it == charged_.end()) return 0;
    const std::int64_t mb = it->second;
    charged_.erase(it);
    if (env_.memory) env_.memory->release(mb);
    return mb;
}

void WorkerPool::refresh_charge(const Worker& w) {
    const auto peak = w.memory_peak();
    if (peak) estimate_.observe(*peak);
    auto it = charged_.find(&w);
    if (it == charged_.end() || !env_.memory) return;
    const auto mb = env_.memory->live_worker_mb(estimate_, peak);
    if (!mb || *mb == it->second) return;
    const std::int64_t was = it->second;
    it->second = *mb;
    env_.memory->recharge(was, *mb, this);
}

std::int64_t WorkerPool::charged_mb() const {
    std::int64_t sum = 0;
    for (const auto& [w, mb] : charged_) sum += mb;
    return sum;
}

std::shared_ptr<Worker> WorkerPool::cold_start(bool provisioned, bool report_init, std::int64_t charged_mb) {
    WorkerSettings settings = settings_;
    settings.provisioned = provisioned;
    settings.report_init = report_init;
    auto w = Worker::create(env_.io, *this, fn_, log_, settings);
    workers_.push_back(w);
    charged_.emplace(w.get(), charged_mb);
    auto spec = provisioned ? provisioned_spec_ : spec_;
    if (!env_.launch_threads) {
        try {
            w->start(env_.launcher.launch(*spec));
        } catch (...) {
            discharge(*w);
            erase_worker(workers_, *w);
            throw;
        }
        return w;
    }
    boost::asio::post(*env_.launch_threads, [w, spec, &launcher = env_.launcher, &io = env_.io,
                                             histogram = env_.launch_duration] {
        try {
            const auto began = Worker::Clock::now();
            auto launched = std::make_shared<LaunchedWorker>(launcher.launch(*spec));
            const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Worker::Clock::now() - began);
            boost::asio::post(io, [w, launched, began, histogram, took] {
                // On the loop: the histogram has one writer.
                if (histogram) histogram->observe_us(took.count());
                w->start(std::move(*launched), began);
            });
        } catch (const std::exception& e) {
            boost::asio::post(io, [w, why = std::string(e.what())] { w->launch_failed(why); });
        }
    });
    return w;
}

WorkerPool::Submit WorkerPool::submit(InvocationPtr& inv) {
    keep_alive_->on_arrival(Clock::now());
    prewarm_at_.reset();
    ++submitted_;
    return place(inv);
}

void WorkerPool::run_elsewhere(InvocationPtr inv) {
    // A retired pool starts nothing new; the memory budget may have been taken meanwhile.
    // Either way the invocation is answered as it would have been without another worker.
    if (retired_ || place(inv) == Submit::no_memory)
        fail_unstarted(inv, "Runtime.ExitError", "Runtime exited with error before it was ready");
}

void WorkerPool::fail_unstarted(InvocationPtr& inv, std::string type, std::string message) {
    InvocationResult r;
    r.outcome = Outcome::init_error;
    r.error_type = std::move(type);
    r.body = error_document(r.error_type, message);
    r.version = fn_->version;
    r.start = std::chrono::system_clock::now();
    // The caller's reference may be the invocation's only one, and `done` reads the
    // invocation: it stays alive until `done` has returned.
    InvocationPtr keep = std::move(inv);
    auto done = std::move(keep->done);
    done(std::move(r));
}

WorkerPool::Submit WorkerPool::place(InvocationPtr& inv) {
    for (auto* stack : {&idle_provisioned_, &idle_}) {
        if (stack->empty()) continue;
        auto w = std::move(stack->back());
        stack->pop_back();
        w->assign(std::move(inv));
        return Submit::started;
    }
    if (!starting_.empty()) {
        // A pre-warmed or provisioned worker still initialising: sooner than a new one.
        auto w = std::move(starting_.front());
        starting_.erase(starting_.begin());
        w->assign(std::move(inv));
        return Submit::started;
    }
    const auto charged = charge();
    if (!charged) return Submit::no_memory;
    std::shared_ptr<Worker> w;
    try {
        w = cold_start(false, true, *charged);
    } catch (const std::exception& e) {
        spdlog::error("pool: cannot start a worker for function={} version={}: {}", fn_->config.name, fn_->version,
                      e.what());
        fail_unstarted(inv, "Runtime.InitError", std::string("could not start the function's runtime: ") + e.what());
        return Submit::started;
    }
    w->assign(std::move(inv));
    return Submit::started;
}

void WorkerPool::worker_available(Worker& w) {
    if (retired_) {
        w.kill();
        return;
    }
    auto it = std::find_if(workers_.begin(), workers_.end(), [&](const auto& p) { return p.get() == &w; });
    if (it == workers_.end()) return;
    // Its init ended or an invocation did: charged from now on by what it was seen to use.
    refresh_charge(w);
    const std::size_t was_starting = std::erase_if(starting_, [&](const auto& p) { return p.get() == &w; });
    (w.provisioned() ? idle_provisioned_ : idle_).push_back(*it);
    // A worker started ahead of demand just finished its init; it ran nothing.
    if (!was_starting &&
        std::none_of(workers_.begin(), workers_.end(), [](const auto& p) { return p->has_invocation(); }))
        went_idle(Clock::now());
    if (env_.on_worker_available) env_.on_worker_available();
}

void WorkerPool::went_idle(Clock::time_point now) {
    decision_ = keep_alive_->on_idle(now);
    if (decision_.prewarm.count() <= 0) return;
    // The next invocation is predicted well after now: free the memory until shortly
    // before it, then have one worker ready.
    for (const auto& w : std::vector(idle_)) end_idle(w);
    prewarm_at_ = now + decision_.prewarm;
}

void WorkerPool::end_idle(const std::shared_ptr<Worker>& w) {
    erase_worker(idle_, *w);
    erase_worker(idle_provisioned_, *w);
    erase_worker(starting_, *w);
    w->kill();
    discharge(*w);
}

void WorkerPool::worker_exited(Worker& w) {
    erase_worker(idle_, w);
    erase_worker(idle_provisioned_, w);
    erase_worker(starting_, w);
    // What it was last seen to use still tells what the function's next workers may need
    // (a worker killed at its memory limit most of all).
    if (const auto peak = w.memory_peak()) estimate_.observe(*peak);
    discharge(w);
    auto it = std::find_if(workers_.begin(), workers_.end(), [&](const auto& p) { return p.get() == &w; });
    if (it == workers_.end()) return;
    // The worker may still be on the call stack (its exit handler called us): keep it
    // alive until this handler returns.
    auto keep = std::move(*it);
    workers_.erase(it);
    dispose(w.release_resources());
    boost::asio::post(env_.io, [keep] {});
    if (workers_.empty() && retired_ && on_drained_) on_drained_(*this);
}

void WorkerPool::dispose(std::unique_ptr<WorkerResources> resources) {
    if (!resources) return;
    if (!env_.launch_threads) return;  // dropped here, on the loop
    boost::asio::post(*env_.launch_threads, [r = std::shared_ptr<WorkerResources>(std::move(resources))]() mutable {
        // Never throws: destructors log what they could not clean up.
        r.reset();
    });
}

void WorkerPool::update_function(FunctionPtr fn) {
    if (fn->version != fn_->version || fn->generation != fn_->generation) return;
    fn_ = std::move(fn);
    ensure_provisioned();
}

ProvisionedCounts WorkerPool::provisioned() const {
    ProvisionedCounts c;
    c.requested = retired_ ? 0 : static_cast<std::size_t>(fn_->config.concurrency.provisioned);
    c.here = provisioned_target();
    for (const auto& w : workers_)
        if (w->provisioned() && w->ready()) ++c.ready;
    return c;
}

WorkerStates WorkerPool::states() const {
    WorkerStates s;
    for (const auto& w : workers_) {
        switch (w->state()) {
            case Worker::State::starting: ++s.starting; break;
            case Worker::State::busy: ++s.busy; break;
            case Worker::State::idle:
                if (w->has_invocation()) ++s.busy;
                else if (w->provisioned()) ++s.provisioned;
                else ++s.idle;
                break;
            case Worker::State::dead: break;
        }
    }
    return s;
}

std::size_t WorkerPool::provisioned_target() const {
    if (retired_) return 0;
    const int requested = fn_->config.concurrency.provisioned;
    return static_cast<std::size_t>(env_.provisioned_share ? env_.provisioned_share(fn_->config.name, requested)
                                                           : requested);
}

void WorkerPool::ensure_provisioned() {
    const std::size_t target = provisioned_target();
    std::vector<std::shared_ptr<Worker>> live;
    for (const auto& w : workers_)
        if (w->provisioned() && !w->ending()) live.push_back(w);
    if (live.size() > target) {
        // Idle ones go first; busy ones finish their invocation as on-demand workers.
        std::stable_partition(live.begin(), live.end(), [](const auto& w) { return !w->has_invocation(); });
        for (std::size_t i = 0; i < live.size() - target; ++i) {
            if (live[i]->has_invocation()) live[i]->clear_provisioned();
            else end_idle(live[i]);
        }
        return;
    }
    for (std::size_t n = live.size(); n < target; ++n) {
        const auto charged = charge();
        if (!charged) {
            if (!warned_provisioned_)
                spdlog::warn("pool: function={} has {} of {} provisioned workers: the memory budget ({} of {} MB "
                             "used) has no room; retrying",
                             fn_->config.name, n, target, env_.memory->used_mb(), env_.memory->limit_mb());
            warned_provisioned_ = true;
            return;
        }
        try {
            starting_.push_back(cold_start(true, false, *charged));
        } catch (const std::exception& e) {
            spdlog::error("pool: cannot start a provisioned worker for function={}: {}", fn_->config.name, e.what());
            return;
        }
    }
    warned_provisioned_ = false;
}

void WorkerPool::retire() {
    retired_ = true;
    prewarm_at_.reset();
    for (const auto& w : std::vector(idle_)) end_idle(w);
    for (const auto& w : std::vector(idle_provisioned_)) end_idle(w);
    for (const auto& w : std::vector(starting_)) end_idle(w);
    for (auto& w : workers_) w->retire();
    if (workers_.empty() && on_drained_) on_drained_(*this);
}

void WorkerPool::tick(Clock::time_point now) {
    if (retired_) return;
    reap_idle(now);
    if (prewarm_at_ && now >= *prewarm_at_) {
        prewarm_at_.reset();
        std::optional<std::int64_t> charged;
        if (idle_.empty() && starting_.empty() && (charged = charge())) {
            try {
                starting_.push_back(cold_start(false, false, *charged));
                spdlog::debug("pool: function={} pre-warmed a worker", fn_->config.name);
            } catch (const std::exception& e) {
                spdlog::error("pool: cannot pre-warm a worker for function={}: {}", fn_->config.name, e.what());
            }
        }
    }
    ensure_provisioned();
}

void WorkerPool::reap_idle(Clock::time_point now) {
    const auto keep_alive = decision_.keep_alive;
    // Front = least recently used; stop at the first one still within its keep-alive.
    std::size_t expired = 0;
    while (expired < idle_.size() && now - idle_[expired]->last_used() >= keep_alive) ++expired;
    if (expired == 0) return;
    std::vector<std::shared_ptr<Worker>> ending(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(expired));
    for (const auto& w : ending) end_idle(w);
    spdlog::debug("pool: function={} version={} reaped {} idle workers", fn_->config.name, fn_->version, expired);
}

std::optional<Clock::time_point> WorkerPool::oldest_idle() const {
    if (idle_.empty()) return std::nullopt;
    return idle_.front()->last_used();
}

std::int64_t WorkerPool::evict_oldest_idle() {
    if (idle_.empty()) return 0;
    auto w = idle_.front();
    spdlog::debug("pool: evicting an idle worker of function={} to make room in the memory budget", fn_->config.name);
    const auto it = charged_.find(w.get());
    const std::int64_t released = it == charged_.end() ? 0 : it->second;
    end_idle(w);
    return released;
}

void WorkerPool::kill_all() {
    // For good (shutdown): a worker that dies of this with an invocation it had not yet
    // asked for must not hand it to a new worker, or the pool would never empty.
    retired_ = true;
    idle_.clear();
    idle_provisioned_.clear();
    starting_.clear();
    prewarm_at_.reset();
    for (auto& w : workers_) w->kill();
}

}  // namespace funcd
