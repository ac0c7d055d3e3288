#include "funcd/lambda_api/aws_credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "funcd/common/hmac.hpp"
#include "funcd/common/text.hpp"

namespace funcd {
namespace {

constexpr std::string_view kProfile = "[funcd]";
constexpr std::string_view kFileName = "aws-credentials";
// AWS's shapes: a 20-character key id starting "AKIA", a 40-character secret.
constexpr std::size_t kKeyIdRandomChars = 16;
constexpr std::size_t kSecretChars = 40;
constexpr std::string_view kKeyIdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kSecretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string random_text(std::size_t n, std::string_view alphabet) {
    std::string bytes(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1)
        throw std::runtime_error("the OS random generator failed");
    std::string out;
    // Both alphabets have a power-of-two size, so the modulo is unbiased.
    for (unsigned char b : bytes) out.push_back(alphabet[b % alphabet.size()]);
    return out;
}

// `n` characters of `alphabet` derived from `key` and `data`: HMAC-SHA256(key, data + i)
// for i = 0, 1, ... gives 32 bytes at a time.
std::string hmac_text(std::string_view key, std::string_view data, std::size_t n, std::string_view alphabet) {
    std::string out;
    for (char round = '0'; out.size() < n; ++round)
        for (unsigned char b : hmac_sha256(key, std::string(data) + round)) {
            if (out.size() == n) break;
            out.push_back(alphabet[b % alphabet.size()]);
        }
    return out;
}

// The [funcd] profile's two keys from a shared-credentials file; nullopt if absent.
std::optional<sigv4::Credential> read_profile(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    sigv4::Credential c;
    bool in_profile = false;
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '[') {
            in_profile = line == kProfile;
            continue;
        }
        if (!in_profile) continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
        if (key == "aws_access_key_id") c.access_key_id = value;
        else if (key == "aws_secret_access_key") c.secret_access_key = value;
    }
    if (c.access_key_id.empty() || c.secret_access_key.empty())
        throw std::runtime_error(path.string() + " has no [funcd] profile with aws_access_key_id and "
                                                 "aws_secret_access_key; fix or remove it");
    return c;
}

void write_profile(const std::filesystem::path& path, const sigv4::Credential& c) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(errno));
    const std::string text = std::string(kProfile) + "\naws_access_key_id = " + c.access_key_id +
                             "\naws_secret_access_key = " + c.secret_access_key + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::fchmod(fd, 0600);
    ::fsync(fd);
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

AwsCredentials load_or_create_aws_credentials(const std::filesystem::path& data_dir,
                                              const std::optional<std::string>& access_key_id,
                                              const std::optional<std::string>& secret_access_key) {
    AwsCredentials out;
    if (access_key_id.has_value() != secret_access_key.has_value())
        throw std::runtime_error("give both --aws-access-key-id and --aws-secret-access-key (or their "
                                 "FUNCD_AWS_* variables), or neither");
    const auto path = data_dir / kFileName;
    if (access_key_id) {
        out.admin = {*access_key_id, *secret_access_key, std::string(kAdminPrincipal)};
    } else if (auto stored = read_profile(path)) {
        out.admin = *stored;
        spdlog::info("lambda api: credentials from {}", path.string());
    } else {
        out.admin = {"AKIA" + random_text(kKeyIdRandomChars, kKeyIdAlphabet),
                     random_text(kSecretChars, kSecretAlphabet), std::string(kAdminPrincipal)};
        write_profile(path, out.admin);
        spdlog::info("lambda api: created {} (profile funcd; AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=funcd)",
                     path.string(), path.string());
    }
    out.admin.principal = std::string(kAdminPrincipal);
    const std::string& id = out.admin.access_key_id;
    out.account_id = id.size() == 12 && std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })
                         ? id
                         : "000000000000";
    // Derived, not random: the same operator secret gives workers the same pair after a restart.
    out.invoker = {"AKIA" + hmac_text(out.admin.secret_access_key, "funcd invoke-only key id", kKeyIdRandomChars,
                                      kKeyIdAlphabet),
                   hmac_text(out.admin.secret_access_key, "funcd invoke-only secret", kSecretChars, kSecretAlphabet),
                   std::string(kInvokerPrincipal)};
    return out;
}

}  // namespace funcd
