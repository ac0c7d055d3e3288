#include "funcd/sandbox/template_protocol.hpp"

#include <sys/socket.h>

#include "funcd/sandbox/sandbox_init.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace funcd {
namespace {

using nlohmann::json;

template <typename T>
T plan_field(const json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end()) throw std::runtime_error(std::string("template message: missing field ") + name);
    try {
        return it->get<T>();
    } catch (const json::exception&) {
        throw std::runtime_error(std::string("template message: field ") + name + " has the wrong type");
    }
}

json encode_ops(const std::vector<MountOp>& ops) {
    json out = json::array();
    for (const MountOp& op : ops)
        out.push_back({{"kind", static_cast<int>(op.kind)}, {"target", op.target}, {"source", op.source},
                       {"fstype", op.fstype}, {"data", op.data}, {"flags", op.flags}, {"mode", op.mode},
                       {"inside", op.inside}, {"fd", op.fd}});
    return out;
}

std::vector<MountOp> decode_ops(const json& j) {
    std::vector<MountOp> ops;
    for (const json& o : j) {
        MountOp op;
        const int kind = plan_field<int>(o, "kind");
        if (kind < static_cast<int>(MountOp::Kind::mount) || kind > static_cast<int>(MountOp::Kind::make_symlink))
            throw std::runtime_error("template message: unknown mount operation");
        op.kind = static_cast<MountOp::Kind>(kind);
        op.target = plan_field<std::string>(o, "target");
        op.source = plan_field<std::string>(o, "source");
        op.fstype = plan_field<std::string>(o, "fstype");
        op.data = plan_field<std::string>(o, "data");
        op.flags = plan_field<unsigned long>(o, "flags");
        op.mode = plan_field<mode_t>(o, "mode");
        op.inside = plan_field<std::string>(o, "inside");
        op.fd = plan_field<int>(o, "fd");
        ops.push_back(std::move(op));
    }
    return ops;
}

}  // namespace

json encode_child_plan(const ChildPlan& p) {
    json detached = json::array();
    for (const DetachedTmpfs& d : p.root.detached)
        detached.push_back({{"size", d.size}, {"attributes", d.attributes}, {"slot", d.slot}, {"inside", d.inside}});
    json rlimits = json::array();
    for (std::size_t i = 0; i < p.rlimits.count; ++i)
        rlimits.push_back({p.rlimits.settings[i].resource, p.rlimits.settings[i].value});
    return json{{"sync", p.sync},
                {"own", p.own},
                {"dev_null", p.dev_null},
                {"output", p.output},
                {"telemetry", p.telemetry},
                {"private_network", p.private_network},
                {"root", {{"new_root", p.root.new_root}, {"detached", detached}, {"ops", encode_ops(p.root.ops)}}},
                {"rlimits", rlimits},
                {"ids",
                 {p.ids.inside_uid, p.ids.inside_gid, p.ids.host_uid, p.ids.host_gid, p.ids.privileged ? 1 : 0}},
                {"last_cap", p.last_cap},
                {"code_dir", p.code_dir},
                {"runtime_dir", p.runtime_dir},
                {"code_slot", p.code_slot},
                {"runtime_slot", p.runtime_slot},
                {"bind_dirs", p.bind_dirs},
                {"bind_slots", p.bind_slots},
                {"exit_status", p.exit_status},
                {"runtime_api", p.runtime_api},
                {"runtime_api_fd", p.runtime_api_fd},
                {"init", p.init},
                {"init_args", p.init_args}};
}

ChildPlan decode_child_plan(const json& j, const SeccompPolicy* seccomp) {
    ChildPlan p;
    p.sync = plan_field<int>(j, "sync");
    p.own = plan_field<std::vector<int>>(j, "own");
    p.dev_null = plan_field<int>(j, "dev_null");
    p.output = plan_field<int>(j, "output");
    p.telemetry = plan_field<int>(j, "telemetry");
    p.private_network = plan_field<bool>(j, "private_network");
    const json& root = j.at("root");
    p.root.new_root = plan_field<std::string>(root, "new_root");
    for (const json& d : root.at("detached"))
        p.root.detached.push_back(DetachedTmpfs{plan_field<std::string>(d, "size"), plan_field<unsigned>(d, "attributes"),
                                                plan_field<int>(d, "slot"), plan_field<std::string>(d, "inside")});
    p.root.ops = decode_ops(root.at("ops"));
    const auto rlimits = plan_field<std::vector<std::pair<int, rlim_t>>>(j, "rlimits");
    if (rlimits.size() > p.rlimits.settings.size()) throw std::runtime_error("template message: too many rlimits");
    for (const auto& [resource, value] : rlimits)
        p.rlimits.settings[p.rlimits.count++] = RlimitSetting{resource, value, rlimit_name(resource)};
    const auto ids = plan_field<std::vector<std::uint64_t>>(j, "ids");
    if (ids.size() != 5) throw std::runtime_error("template message: ids");
    p.ids = IdMapping{static_cast<uid_t>(ids[0]), static_cast<gid_t>(ids[1]), static_cast<uid_t>(ids[2]),
                      static_cast<gid_t>(ids[3]), ids[4] != 0};
    p.last_cap = plan_field<int>(j, "last_cap");
    p.seccomp = seccomp;
    p.code_dir = plan_field<std::string>(j, "code_dir");
    p.runtime_dir = plan_field<std::string>(j, "runtime_dir");
    p.code_slot = plan_field<int>(j, "code_slot");
    p.runtime_slot = plan_field<int>(j, "runtime_slot");
    p.bind_dirs = plan_field<std::vector<std::string>>(j, "bind_dirs");
    p.bind_slots = plan_field<std::vector<int>>(j, "bind_slots");
    if (p.bind_dirs.size() != p.bind_slots.size()) throw std::runtime_error("template message: bind slots");
    p.exit_status = plan_field<int>(j, "exit_status");
    p.runtime_api = plan_field<int>(j, "runtime_api");
    p.runtime_api_fd = plan_field<int>(j, "runtime_api_fd");
    p.init = plan_field<int>(j, "init");
    p.init_args = plan_field<std::vector<std::string>>(j, "init_args");
    if (p.init_args.size() != static_cast<std::size_t>(kSandboxInitFixedArgs))
        throw std::runtime_error("template message: init_args");
    p.finish = ChildFinish::fork_runtime;
    return p;
}

json encode_seccomp(const SeccompPolicy& policy) {
    json out = json::array();
    for (const sock_filter& f : policy.filter()) out.push_back({f.code, f.jt, f.jf, f.k});
    return out;
}

SeccompPolicy decode_seccomp(const json& j) {
    std::vector<sock_filter> filter;
    for (const json& f : j) {
        if (!f.is_array() || f.size() != 4) throw std::runtime_error("template message: seccomp instruction");
        filter.push_back(sock_filter{f[0].get<std::uint16_t>(), f[1].get<std::uint8_t>(), f[2].get<std::uint8_t>(),
                                     f[3].get<std::uint32_t>()});
    }
    if (filter.empty()) throw std::runtime_error("template message: empty seccomp program");
    return SeccompPolicy::from_program(std::move(filter));
}

int send_template_message(int sock, const std::string& body, std::span<const int> fds) noexcept {
    if (fds.size() > kTemplateMessageMaxFds || body.size() > kTemplateMessageMax) return EMSGSIZE;
    iovec iov{const_cast<char*>(body.data()), body.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kTemplateMessageMaxFds)] = {};
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return 0;
        if (errno != EINTR) return errno;
    }
}

TemplateMessage receive_template_message(int sock) {
    TemplateMessage out;
    out.body.resize(kTemplateMessageMax);
    iovec iov{out.body.data(), out.body.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kTemplateMessageMaxFds)] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        out.error = errno;
        out.body.clear();
        return out;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            out.fds.emplace_back(fd);
        }
    }
    if (n == 0 && out.fds.empty()) out.closed = true;
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) out.error = EMSGSIZE;
    out.body.resize(static_cast<std::size_t>(n));
    return out;
}

std::string encode_environment(const std::vector<std::string>& env) {
    std::string block;
    for (const std::string& e : env) {
        block += e;
        block.push_back('\0');
    }
    return block;
}

std::vector<std::string> decode_environment(std::string_view block) {
    std::vector<std::string> env;
    while (!block.empty()) {
        const auto end = block.find('\0');
        env.emplace_back(block.substr(0, end));
        if (end == std::string_view::npos) break;
        block.remove_prefix(end + 1);
    }
    return env;
}

}  // namespace funcd
