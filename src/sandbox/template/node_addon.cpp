// The Node.js face of a runtime template's native half: an N-API module in the same
// library as template_server.cpp, which runtime/nodejs/template.js loads with
// process.dlopen. serve(controlFd) returns only in a forked runtime, after what a fork of
// Node needs and a raw clone does not give it:
// - its own event loop kernel objects. libuv's epoll instance, its async wakeup and
//   signal descriptors are the template's open files, shared by every copy; uv_loop_fork
//   makes new ones and registers the loop's watchers with them again;
// - the worker's environment in place of the template's, before any JavaScript reads it
//   (process.env reads the C environment);
// - every descriptor close-on-exec (node's start marked only the template's);
// - seeds from the kernel for Math.random (in serve's result, and seed()), which the
//   caller applies: V8's generator state is the template's, the same in every copy; and
//   the process's own pid and parent pid, which Node read once, as the template started.
// Besides: pair() (a socketpair for the template's warm-up) and exit(code) (the forked
// runtime's process.reallyExit).
//
// Before it serves, the template's memory is made forkable again: V8 marks the pages it
// maps MADV_DONTFORK (so that a child_process spawn does not copy a large heap), and a
// copy of the process without its heap could not run a line of JavaScript.
//
// N-API is a stable C ABI exported by the node binary. Its functions are declared here,
// weak, rather than taken from Node's headers (a development package the daemon's build
// does not need): Python loads the same library through ctypes, where they resolve to
// null and this module's entry point is never called.
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "funcd/sandbox/template_entry.hpp"

extern "C" {
// js_native_api_types.h and node_api_types.h, as far as used here.
typedef struct napi_env__* napi_env;
typedef struct napi_value__* napi_value;
typedef struct napi_callback_info__* napi_callback_info;
typedef int napi_status;  // an enum; napi_ok is 0
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
struct uv_loop_s;

__attribute__((weak)) napi_status napi_get_cb_info(napi_env env, napi_callback_info info, std::size_t* argc,
                                                   napi_value* argv, napi_value* this_arg, void** data);
__attribute__((weak)) napi_status napi_get_value_int32(napi_env env, napi_value value, std::int32_t* result);
__attribute__((weak)) napi_status napi_create_int32(napi_env env, std::int32_t value, napi_value* result);
__attribute__((weak)) napi_status napi_create_object(napi_env env, napi_value* result);
__attribute__((weak)) napi_status napi_create_function(napi_env env, const char* name, std::size_t length,
                                                       napi_callback cb, void* data, napi_value* result);
__attribute__((weak)) napi_status napi_set_named_property(napi_env env, napi_value object, const char* name,
                                                          napi_value value);
__attribute__((weak)) napi_status napi_throw_error(napi_env env, const char* code, const char* msg);
__attribute__((weak)) napi_status napi_get_uv_event_loop(napi_env env, uv_loop_s** loop);
__attribute__((weak)) int uv_loop_fork(uv_loop_s* loop);

// What Node looks up in a library process.dlopen loaded.
__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports);
__attribute__((visibility("default"))) std::int32_t node_api_module_get_api_version_v1(void);
}

namespace {

constexpr napi_status kNapiOk = 0;
// N-API 8 (Node.js 12.22, 14.17, 15.12 and later) has everything used here.
constexpr std::int32_t kNapiVersion = 8;

// The worker's environment replaces the template's. putenv keeps the strings themselves,
// so the block (with a terminating NUL added) lives as long as the process.
bool take_environment(const char* block, std::size_t len) {
    char* copy = static_cast<char*>(std::malloc(len + 1));
    if (!copy) return false;
    std::memcpy(copy, block, len);
    copy[len] = '\0';
    if (::clearenv() != 0) return false;
    for (char* entry = copy; entry < copy + len; entry += std::strlen(entry) + 1)
        if (*entry && std::strchr(entry, '=') && ::putenv(entry) != 0) return false;
    return true;
}

// A non-zero 31-bit seed (V8 takes --random-seed as an int; 0 means "none").
std::int32_t fresh_seed() {
    std::uint32_t bits = 0;
    while ((bits & 0x7fffffff) == 0) {
        const ssize_t n = ::getrandom(&bits, sizeof bits, 0);
        if (n < 0 && errno != EINTR) return 0;
    }
    return static_cast<std::int32_t>(bits & 0x7fffffff);
}

// Clears MADV_DONTFORK from every mapping that has it ("dc" among /proc/self/smaps'
// VmFlags). 0, or the errno of the first that failed.
int make_memory_forkable() {
    std::ifstream smaps("/proc/self/smaps");
    if (!smaps) return errno ? errno : EIO;
    std::string line;
    std::uintptr_t start = 0, end = 0;
    while (std::getline(smaps, line)) {
        std::uintptr_t a = 0, b = 0;
        // A mapping's first line: "start-end perms offset dev inode [path]"; the others
        // are "Name: value", none of which reads as two hex numbers joined by '-'.
        if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " ", &a, &b) == 2) {
            start = a;
            end = b;
            continue;
        }
        if (line.rfind("VmFlags:", 0) != 0 || (line + " ").find(" dc ") == std::string::npos) continue;
        if (::madvise(reinterpret_cast<void*>(start), end - start, MADV_DOFORK) != 0) return errno;
    }
    return 0;
}

napi_value fail(napi_env env, const char* what) {
    napi_throw_error(env, "FUNCD_TEMPLATE", what);
    return nullptr;
}

napi_value serve(napi_env env, napi_callback_info info) {
    std::size_t argc = 1;
    napi_value argv[1] = {};
    std::int32_t control = -1;
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != kNapiOk || argc < 1 ||
        napi_get_value_int32(env, argv[0], &control) != kNapiOk)
        return fail(env, "serve(controlFd) takes the control socket's descriptor number");
    if (int err = make_memory_forkable(); err != 0)
        return fail(env, (std::string("clearing MADV_DONTFORK: ") + std::strerror(err)).c_str());
    char* block = nullptr;
    std::size_t len = 0;
    // In the template this call exits instead of returning (the daemon closed its end).
    if (funcd_template_serve(control, &block, &len) != 0) return fail(env, "the template could not serve");
    // From here on: a runtime in its sandbox, the only thread of its process.
    uv_loop_s* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != kNapiOk || !loop || !uv_loop_fork || uv_loop_fork(loop) != 0)
        ::_exit(1);  // a loop sharing the template's epoll instance must not run
    // The descriptors the runtime was given (the Runtime API's connection, the telemetry
    // pipe) are not passed on to processes the handler starts. node's start marks only the
    // first sixteen or so (uv_disable_stdio_inheritance); every one is marked here. stdio
    // is dup2()ed onto a child's 0-2 by libuv's spawn, so marking it too changes nothing.
    if (::close_range(0, ~0U, CLOSE_RANGE_CLOEXEC) != 0) ::_exit(1);
    const bool taken = take_environment(block, len);
    std::free(block);
    if (!taken) ::_exit(1);
    // What Node read once as it started, and the copy must not take from the template.
    napi_value result = nullptr, seed = nullptr, pid = nullptr, ppid = nullptr;
    if (napi_create_object(env, &result) != kNapiOk || napi_create_int32(env, fresh_seed(), &seed) != kNapiOk ||
        napi_create_int32(env, ::getpid(), &pid) != kNapiOk || napi_create_int32(env, ::getppid(), &ppid) != kNapiOk ||
        napi_set_named_property(env, result, "seed", seed) != kNapiOk ||
        napi_set_named_property(env, result, "pid", pid) != kNapiOk ||
        napi_set_named_property(env, result, "ppid", ppid) != kNapiOk)
        return fail(env, "creating serve's result");
    return result;
}

napi_value seed(napi_env env, napi_callback_info) {
    napi_value value = nullptr;
    if (napi_create_int32(env, fresh_seed(), &value) != kNapiOk) return fail(env, "creating a seed");
    return value;
}

// A connected pair of AF_UNIX stream sockets, {a, b}: the template's warm-up runs the
// runtime's own client over it (nodejs/template.js).
napi_value pair(napi_env env, napi_callback_info) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return fail(env, (std::string("socketpair: ") + std::strerror(errno)).c_str());
    napi_value result = nullptr, a = nullptr, b = nullptr;
    if (napi_create_object(env, &result) != kNapiOk || napi_create_int32(env, fds[0], &a) != kNapiOk ||
        napi_create_int32(env, fds[1], &b) != kNapiOk || napi_set_named_property(env, result, "a", a) != kNapiOk ||
        napi_set_named_property(env, result, "b", b) != kNapiOk) {
        ::close(fds[0]);
        ::close(fds[1]);
        return fail(env, "creating pair's result");
    }
    return result;
}

// process.reallyExit in a forked runtime: Node's own exit joins and drains the platform's
// threads, which only the template has.
napi_value exit_now(napi_env env, napi_callback_info info) {
    std::size_t argc = 1;
    napi_value argv[1] = {};
    std::int32_t code = 0;
    if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != kNapiOk || argc < 1 ||
        napi_get_value_int32(env, argv[0], &code) != kNapiOk)
        code = 0;
    ::_exit(code);
}

bool export_function(napi_env env, napi_value exports, const char* name, napi_callback cb) {
    napi_value fn = nullptr;
    return napi_create_function(env, name, std::strlen(name), cb, nullptr, &fn) == kNapiOk &&
           napi_set_named_property(env, exports, name, fn) == kNapiOk;
}

}  // namespace

extern "C" napi_value napi_register_module_v1(napi_env env, napi_value exports) {
    if (!napi_create_function || !export_function(env, exports, "serve", serve) ||
        !export_function(env, exports, "seed", seed) || !export_function(env, exports, "exit", exit_now) ||
        !export_function(env, exports, "pair", pair))
        return nullptr;
    return exports;
}

extern "C" std::int32_t node_api_module_get_api_version_v1(void) {
    return kNapiVersion;
}
