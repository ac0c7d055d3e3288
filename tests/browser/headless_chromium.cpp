#include "headless_chromium.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "daemon_harness.hpp"
#include "funcd/common/base64.hpp"

namespace funcd::testing {

namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// How long a DevTools answer may take: a cold headless start under a sanitizer build on a
// loaded 2-core machine takes a few seconds; a minute means it is stuck.
constexpr auto kReplyTimeout = 60s;
constexpr auto kStartTimeout = 60s;
// Screenshots of a long page are a few MB of base64.
constexpr std::size_t kMaxMessageBytes = 64 * 1024 * 1024;

std::filesystem::path make_profile_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "funcd-chromium-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

}  // namespace

struct HeadlessChromium::Socket {
    net::io_context io;
    websocket::stream<net::ip::tcp::socket> ws{io};
};

std::filesystem::path HeadlessChromium::binary() {
    if (const char* b = std::getenv("FUNCD_CHROMIUM")) return b;
    return "/usr/bin/chromium";
}

HeadlessChromium::HeadlessChromium() : profile_(make_profile_dir()) {
    const std::filesystem::path exe = binary();
    if (::access(exe.c_str(), X_OK) != 0)
        throw std::runtime_error(exe.string() + " is not there: install Debian's chromium (scripts/setup --tests)");
    const std::string log = (profile_ / "chromium.log").string();
    std::vector<std::string> args = {
        exe.string(), "--headless=new",
        // As root (as CI runs) chromium refuses to start with its own sandbox.
        "--no-sandbox", "--disable-gpu", "--disable-crash-reporter", "--disable-breakpad", "--disable-dev-shm-usage", "--no-first-run",
        "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--metrics-recording-only", "--mute-audio",
        "--user-data-dir=" + profile_.string(), "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0", "--window-size=1280,1600", "about:blank"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::setpgid(0, 0);  // its helpers in one group, ended together
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // and gone with a test that dies
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out >= 0) {
            ::dup2(out, 1);
            ::dup2(out, 2);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::setpgid(pid_, pid_);

    // Chromium writes the port it chose and its browser endpoint to DevToolsActivePort in
    // its profile.
    unsigned short port = 0;
    std::string browser_path;
    const auto give_up = std::chrono::steady_clock::now() + kStartTimeout;
    while (!port) {
        if (std::chrono::steady_clock::now() > give_up)
            throw std::runtime_error("chromium wrote no DevToolsActivePort; its log: " + read_file(log));
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("chromium exited at start; its log: " + read_file(log));
        }
        std::ifstream in(profile_ / "DevToolsActivePort");
        int p = 0;
        if (in >> p >> browser_path && p > 0 && browser_path.starts_with("/devtools/browser/"))
            port = static_cast<unsigned short>(p);
        else std::this_thread::sleep_for(50ms);
    }
    socket_ = std::make_unique<Socket>();
    net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
    socket_->ws.next_layer().connect(ep);
    // A read that waits longer than this fails instead of hanging the test.
    timeval tv{static_cast<time_t>(std::chrono::seconds(kReplyTimeout).count()), 0};
    ::setsockopt(socket_->ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socket_->ws.read_message_max(kMaxMessageBytes);
    socket_->ws.handshake("127.0.0.1:" + std::to_string(port), browser_path);

    // The page it opened, attached as a session of the browser's connection.
    std::string target;
    while (target.empty()) {
        if (std::chrono::steady_clock::now() > give_up) throw std::runtime_error("chromium lists no page");
        const json targets = call("Target.getTargets");
        for (const auto& t : targets["targetInfos"])
            if (t.value("type", "") == "page") target = t.value("targetId", "");
        if (target.empty()) std::this_thread::sleep_for(50ms);
    }
    session_ = call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}})["sessionId"];

    call("Runtime.enable");
    call("Log.enable");
    call("Page.enable");
}

HeadlessChromium::~HeadlessChromium() {
    if (socket_) {
        boost::system::error_code ec;
        socket_->ws.next_layer().close(ec);
    }
    if (pid_ > 0) {
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(profile_, ec);
}

void HeadlessChromium::on_event(const json& m) {
    const std::string method = m.value("method", "");
    const json& p = m.contains("params") ? m["params"] : json::object();
    if (method == "Runtime.exceptionThrown") {
        const json& d = p["exceptionDetails"];
        std::string what = d.value("text", "");
        if (d.contains("exception")) what += " " + d["exception"].value("description", "");
        errors_.push_back("exception: " + what + " at " + d.value("url", "") + ":" +
                          std::to_string(d.value("lineNumber", 0) + 1));
    } else if (method == "Runtime.consoleAPICalled") {
        const std::string type = p.value("type", "");
        if (type != "error" && type != "assert") return;
        std::string text;
        for (const auto& a : p["args"]) {
            if (a.contains("value")) text += a["value"].is_string() ? a["value"].get<std::string>() : a["value"].dump();
            else text += a.value("description", "");
            text += ' ';
        }
        errors_.push_back("console." + type + ": " + text);
    } else if (method == "Log.entryAdded") {
        const json& e = p["entry"];
        if (e.value("level", "") == "error")
            errors_.push_back("log (" + e.value("source", "") + "): " + e.value("text", "") + " " + e.value("url", ""));
    }
}

json HeadlessChromium::call(const std::string& method, const json& params) {
    const int id = next_id_++;
    json message{{"id", id}, {"method", method}, {"params", params}};
    if (!session_.empty()) message["sessionId"] = session_;
    socket_->ws.text(true);
    socket_->ws.write(net::buffer(message.dump()));
    for (;;) {
        boost::beast::flat_buffer buf;
        socket_->ws.read(buf);
        json m = json::parse(boost::beast::buffers_to_string(buf.data()));
        if (!m.contains("id")) {
            on_event(m);
            continue;
        }
        if (m["id"] != id) continue;
        if (m.contains("error")) throw std::runtime_error(method + ": " + m["error"].dump());
        return m.value("result", json::object());
    }
}

void HeadlessChromium::navigate(const std::string& url) {
    call("Page.navigate", {{"url", url}});
    if (!wait_for("document.readyState === 'complete' && location.href === " + json(url).dump()))
        throw std::runtime_error("the page did not load: " + url);
}

json HeadlessChromium::evaluate(const std::string& expression) {
    json r = call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    if (r.contains("exceptionDetails")) {
        const json& d = r["exceptionDetails"];
        throw std::runtime_error("evaluating `" + expression + "` threw: " +
                                 (d.contains("exception") ? d["exception"].value("description", "") : d.value("text", "")));
    }
    return r["result"].value("value", json());
}

bool HeadlessChromium::wait_for(const std::string& expression, std::chrono::milliseconds timeout) {
    const std::string guarded = "(() => { try { return !!(" + expression + "); } catch (e) { return false; } })()";
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (evaluate(guarded) == true) return true;
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(100ms);
    }
}

void HeadlessChromium::screenshot(const std::filesystem::path& png) {
    json r = call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}});
    auto bytes = base64_decode(r.value("data", ""));
    if (!bytes) throw std::runtime_error("the screenshot is not base64");
    std::filesystem::create_directories(png.parent_path());
    std::ofstream(png, std::ios::binary) << *bytes;
}

}  // namespace funcd::testing
