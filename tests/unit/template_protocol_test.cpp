// The messages between the daemon and a runtime template (template_protocol.hpp): a plan
// survives the trip whole, a malformed one is refused by name, descriptors ride along.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "funcd/sandbox/template_protocol.hpp"

namespace funcd {
namespace {

using nlohmann::json;

ChildPlan sample_plan() {
    ChildPlan p;
    p.sync = 11;
    p.own = {4, 11, 12, 13};
    p.dev_null = 12;
    p.output = 13;
    p.telemetry = 14;
    p.private_network = false;
    p.root.new_root = "/run/funcd/sandbox-root";
    p.root.detached.push_back({"512m", 6, 20, "/tmp"});
    MountOp op;
    op.kind = MountOp::Kind::make_file;
    op.target = "/run/funcd/sandbox-root/etc/passwd";
    op.data = "root:x:0:0::/:/sbin/nologin\n";
    op.mode = 0644;
    op.inside = "/etc/passwd";
    p.root.ops.push_back(op);
    op = MountOp{};
    op.kind = MountOp::Kind::mount;
    op.source = "/proc/self/fd/21";
    op.target = "/run/funcd/sandbox-root/var/task";
    op.fstype = "";
    op.flags = 4096 | 1;
    op.inside = "/var/task";
    p.root.ops.push_back(op);
    p.rlimits.settings[0] = {RLIMIT_NOFILE, 1024, "RLIMIT_NOFILE"};
    p.rlimits.settings[1] = {RLIMIT_FSIZE, 512ull << 20, "RLIMIT_FSIZE"};
    p.rlimits.count = 2;
    p.ids = {993, 990, 200123, 200123, true};
    p.last_cap = 40;
    p.code_dir = "/var/lib/funcd/code/abc";
    p.runtime_dir = "/usr/share/funcd/runtime";
    p.code_slot = 21;
    p.runtime_slot = 22;
    p.bind_dirs = {"/srv/uploads"};
    p.bind_slots = {23};
    p.exit_status = 15;
    p.runtime_api = 16;
    p.runtime_api_fd = 5;
    p.init = 17;
    p.init_args = {"funcd-init", "11", "15", "16"};
    p.env = {"SECRET=never-sent"};
    return p;
}

TEST(TemplateProtocol, APlanSurvivesTheTripWithoutTheEnvironment) {
    const ChildPlan p = sample_plan();
    const SeccompPolicy seccomp = SeccompPolicy::from_program({{6, 0, 0, 0x7fff0000}});
    const json wire = json::parse(encode_child_plan(p).dump());
    EXPECT_EQ(wire.dump().find("never-sent"), std::string::npos) << "the environment went to the template";
    const ChildPlan q = decode_child_plan(wire, &seccomp);
    EXPECT_EQ(q.sync, p.sync);
    EXPECT_EQ(q.own, p.own);
    EXPECT_EQ(q.dev_null, p.dev_null);
    EXPECT_EQ(q.output, p.output);
    EXPECT_EQ(q.telemetry, p.telemetry);
    EXPECT_EQ(q.private_network, p.private_network);
    EXPECT_EQ(q.root.new_root, p.root.new_root);
    ASSERT_EQ(q.root.detached.size(), 1u);
    EXPECT_EQ(q.root.detached[0].size, "512m");
    EXPECT_EQ(q.root.detached[0].attributes, 6u);
    EXPECT_EQ(q.root.detached[0].slot, 20);
    ASSERT_EQ(q.root.ops.size(), 2u);
    EXPECT_EQ(q.root.ops[0].kind, MountOp::Kind::make_file);
    EXPECT_EQ(q.root.ops[0].data, p.root.ops[0].data);
    EXPECT_EQ(q.root.ops[0].mode, 0644u);
    EXPECT_EQ(q.root.ops[1].kind, MountOp::Kind::mount);
    EXPECT_EQ(q.root.ops[1].source, "/proc/self/fd/21");
    EXPECT_EQ(q.root.ops[1].flags, 4097u);
    ASSERT_EQ(q.rlimits.count, 2u);
    EXPECT_EQ(q.rlimits.settings[1].resource, RLIMIT_FSIZE);
    EXPECT_EQ(q.rlimits.settings[1].value, 512ull << 20);
    EXPECT_STREQ(q.rlimits.settings[1].name, "RLIMIT_FSIZE");
    EXPECT_EQ(q.ids.host_uid, 200123u);
    EXPECT_EQ(q.ids.inside_gid, 990u);
    EXPECT_TRUE(q.ids.privileged);
    EXPECT_EQ(q.last_cap, 40);
    EXPECT_EQ(q.seccomp, &seccomp);
    EXPECT_EQ(q.code_dir, p.code_dir);
    EXPECT_EQ(q.runtime_dir, p.runtime_dir);
    EXPECT_EQ(q.bind_dirs, p.bind_dirs);
    EXPECT_EQ(q.bind_slots, p.bind_slots);
    EXPECT_EQ(q.exit_status, 15);
    EXPECT_EQ(q.runtime_api, 16);
    EXPECT_EQ(q.runtime_api_fd, 5);
    EXPECT_EQ(q.init, 17);
    EXPECT_EQ(q.init_args, p.init_args);
    EXPECT_EQ(q.finish, ChildFinish::fork_runtime);
    EXPECT_TRUE(q.env.empty());
}

TEST(TemplateProtocol, AMalformedPlanIsRefusedByName) {
    json wire = encode_child_plan(sample_plan());
    wire.erase("code_dir");
    try {
        decode_child_plan(wire, nullptr);
        ADD_FAILURE() << "a plan without code_dir was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("code_dir"), std::string::npos) << e.what();
    }
    wire = encode_child_plan(sample_plan());
    wire["bind_slots"] = json::array();
    EXPECT_THROW(decode_child_plan(wire, nullptr), std::runtime_error);
    wire = encode_child_plan(sample_plan());
    wire["root"]["ops"][0]["kind"] = 99;
    EXPECT_THROW(decode_child_plan(wire, nullptr), std::runtime_error);
    wire = encode_child_plan(sample_plan());
    wire["init_args"] = json::array({"funcd-init"});
    EXPECT_THROW(decode_child_plan(wire, nullptr), std::runtime_error);
}

TEST(TemplateProtocol, TheSeccompProgramAndTheEnvironmentRoundTrip) {
    const SeccompPolicy policy = SeccompPolicy::from_program({{0x20, 0, 0, 4}, {0x15, 1, 0, 0xc000003e}, {6, 0, 0, 0}});
    const SeccompPolicy back = decode_seccomp(json::parse(encode_seccomp(policy).dump()));
    ASSERT_EQ(back.instructions(), 3u);
    EXPECT_EQ(back.filter()[1].code, 0x15);
    EXPECT_EQ(back.filter()[1].jt, 1);
    EXPECT_EQ(back.filter()[1].k, 0xc000003eu);
    EXPECT_EQ(back.program()->len, 3);
    EXPECT_THROW(decode_seccomp(json::array()), std::runtime_error);

    const std::vector<std::string> env{"A=1", "EMPTY=", "EQ=a=b", "_HANDLER=app.handler"};
    EXPECT_EQ(decode_environment(encode_environment(env)), env);
    EXPECT_TRUE(decode_environment("").empty());
}

TEST(TemplateProtocol, MessagesCarryTheirDescriptors) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    UniqueFd a(pair[0]), b(pair[1]);
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    UniqueFd r(pipe_fds[0]), w(pipe_fds[1]);
    const int fds[] = {w.get(), r.get()};
    ASSERT_EQ(send_template_message(a.get(), R"({"hello":1})", fds), 0);
    TemplateMessage m = receive_template_message(b.get());
    EXPECT_EQ(m.error, 0);
    EXPECT_FALSE(m.closed);
    EXPECT_EQ(m.body, R"({"hello":1})");
    ASSERT_EQ(m.fds.size(), 2u);
    // The received write end writes into our pipe.
    ASSERT_EQ(::write(m.fds[0].get(), "x", 1), 1);
    char c = 0;
    ASSERT_EQ(::read(r.get(), &c, 1), 1);
    EXPECT_EQ(c, 'x');
    EXPECT_EQ(::fcntl(m.fds[1].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

    const std::string too_big(kTemplateMessageMax + 1, 'x');
    EXPECT_EQ(send_template_message(a.get(), too_big, {}), EMSGSIZE);
    a.reset();
    EXPECT_TRUE(receive_template_message(b.get()).closed);
}

}  // namespace
}  // namespace funcd
