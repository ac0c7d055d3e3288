#include "funcd/cli/client_config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "funcd/cli/cli_error.hpp"
#include "funcd/common/text.hpp"

namespace funcd::cli {

namespace fs = std::filesystem;

GetEnv process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        if (!v || !*v) return std::nullopt;
        return std::string(v);
    };
}

std::optional<fs::path> config_file_path(const GetEnv& env) {
    if (auto xdg = env("XDG_CONFIG_HOME")) return fs::path(*xdg) / "funcd" / "config";
    if (auto home = env("HOME")) return fs::path(*home) / ".config" / "funcd" / "config";
    return std::nullopt;
}

StoredConfig read_config_file(const fs::path& path) {
    StoredConfig out;
    std::error_code ec;
    if (!fs::exists(path, ec)) return out;
    std::ifstream in(path);
    if (!in) throw CliError::usage("cannot read " + path.string() + ": " + std::strerror(errno));
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        const std::string text = trim(line);
        if (text.empty() || text[0] == '#') continue;
        const auto eq = text.find('=');
        const std::string key = eq == std::string::npos ? text : trim(text.substr(0, eq));
        const std::string value = eq == std::string::npos ? "" : trim(text.substr(eq + 1));
        if (eq == std::string::npos || (key != "endpoint" && key != "token"))
            throw CliError::usage(path.string() + " line " + std::to_string(number) +
                                  ": expected endpoint=URL or token=TOKEN; fix it or run funcd login again");
        (key == "endpoint" ? out.endpoint : out.token) = value;
    }
    return out;
}

void write_config_file(const fs::path& path, const StoredConfig& config) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw CliError::usage("cannot create " + path.parent_path().string() + ": " + ec.message());
    std::ostringstream text;
    text << "# written by funcd login\n";
    if (config.endpoint) text << "endpoint=" << *config.endpoint << "\n";
    if (config.token) text << "token=" << *config.token << "\n";
    const std::string data = text.str();

    // A temporary file created 0600 and renamed over the old one: the token is never in a
    // file others may read, and a crash leaves the old file or the new one, not half of one.
    const fs::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw CliError::usage("cannot write " + tmp.string() + ": " + std::strerror(errno));
    // An existing temporary file kept its old mode through O_CREAT; make it ours.
    bool ok = ::fchmod(fd, 0600) == 0;
    for (std::size_t off = 0; ok && off < data.size();) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ok = false;
        else off += static_cast<std::size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(ok ? errno : err);
        ::unlink(tmp.c_str());
        throw CliError::usage("cannot write " + path.string() + ": " + why);
    }
}

ClientConfig discover_config(const ConfigInputs& in) {
    ClientConfig out;
    const auto file = config_file_path(in.env);
    StoredConfig stored;
    if (file) stored = read_config_file(*file);

    if (in.endpoint_flag) {
        out.endpoint = *in.endpoint_flag;
        out.endpoint_source = "--endpoint";
    } else if (auto v = in.env("FUNCD_ENDPOINT")) {
        out.endpoint = *v;
        out.endpoint_source = "FUNCD_ENDPOINT";
    } else if (stored.endpoint) {
        out.endpoint = *stored.endpoint;
        out.endpoint_source = file->string();
    } else {
        out.endpoint = kDefaultEndpoint;
        out.endpoint_source = "default";
    }

    if (in.token_flag) {
        out.token = *in.token_flag;
        out.token_source = "--token";
    } else if (auto v = in.env("FUNCD_API_TOKEN")) {
        out.token = *v;
        out.token_source = "FUNCD_API_TOKEN";
    } else if (std::ifstream local(in.working_dir / "data" / "api-token"); local) {
        std::string token((std::istreambuf_iterator<char>(local)), std::istreambuf_iterator<char>());
        out.token = trim(token);
        out.token_source = "./data/api-token";
    } else if (stored.token) {
        out.token = *stored.token;
        out.token_source = file->string();
    }
    return out;
}

}  // namespace funcd::cli
