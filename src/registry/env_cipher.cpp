#include "funcd/registry/env_cipher.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "funcd/common/base64.hpp"
#include "funcd/common/ids.hpp"

namespace funcd {
namespace {

using nlohmann::json;

// GCM's recommended nonce size (NIST SP 800-38D); random nonces are safe for far more
// seals than any data directory makes under one key (2^32).
constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;
constexpr std::size_t kKeyIdBytes = 4;
// The format of a sealed env, in the document and in the associated data.
constexpr std::string_view kSealVersion = "aes-256-gcm/1";

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out += kDigits[p[i] >> 4];
        out += kDigits[p[i] & 15];
    }
    return out;
}

bool unhex(std::string_view text, unsigned char* out, std::size_t n) {
    if (text.size() != 2 * n) return false;
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < n; ++i) {
        const int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return true;
}

EnvCipher::Key new_key() {
    EnvCipher::Key k{};
    if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) throw std::runtime_error("RAND_bytes failed");
    return k;
}

std::vector<std::pair<std::string, EnvCipher::Key>> read_keyring(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read the environment keyring " + file.string() + ": " + std::strerror(errno));
    std::vector<std::pair<std::string, EnvCipher::Key>> keys;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.empty()) continue;
        const auto space = line.find(' ');
        EnvCipher::Key k{};
        if (space == std::string::npos || space == 0 || !unhex(line.substr(space + 1), k.data(), k.size()))
            throw std::runtime_error("the environment keyring " + file.string() + " is malformed at line " +
                                     std::to_string(number) + " (want '<id> <64 hex digits>')");
        keys.emplace_back(line.substr(0, space), k);
    }
    if (keys.empty()) throw std::runtime_error("the environment keyring " + file.string() + " holds no key");
    return keys;
}

// Writes the keyring through a temporary file and a rename, 0600 from the start.
void write_keyring(const std::filesystem::path& file, const std::vector<std::pair<std::string, EnvCipher::Key>>& keys) {
    std::string text;
    for (const auto& [id, k] : keys) text += id + " " + hex(k.data(), k.size()) + "\n";
    const std::filesystem::path tmp = file.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + tmp.string() + ": " + std::strerror(errno));
    const bool ok = ::fchmod(fd, 0600) == 0 &&
                    ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok || std::rename(tmp.c_str(), file.c_str()) != 0) {
        const int e = ok ? errno : err;
        ::unlink(tmp.c_str());
        throw std::runtime_error("cannot write the environment keyring " + file.string() + ": " + std::strerror(e));
    }
}

std::string associated_data(const std::string& function) {
    return std::string(kSealVersion) + "\n" + function;
}

struct CtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

std::string gcm_seal(const EnvCipher::Key& key, const unsigned char* nonce, const std::string& aad,
                     const std::string& plain) {
    Ctx ctx(EVP_CIPHER_CTX_new());
    std::string out(plain.size() + kTagBytes, '\0');
    int len = 0, total = 0;
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
        EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(ctx.get(), o, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                          static_cast<int>(plain.size())) != 1)
        throw std::runtime_error("AES-GCM encryption failed");
    total = len;
    if (EVP_EncryptFinal_ex(ctx.get(), o + total, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, o + total + len) != 1)
        throw std::runtime_error("AES-GCM encryption failed");
    out.resize(static_cast<std::size_t>(total + len + kTagBytes));
    return out;
}

// nullopt when the tag does not verify (wrong key, altered data or associated data).
std::optional<std::string> gcm_open(const EnvCipher::Key& key, const unsigned char* nonce, const std::string& aad,
                                    const std::string& sealed) {
    if (sealed.size() < static_cast<std::size_t>(kTagBytes)) return std::nullopt;
    const std::size_t n = sealed.size() - kTagBytes;
    Ctx ctx(EVP_CIPHER_CTX_new());
    std::string out(n, '\0');
    int len = 0;
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
    std::array<unsigned char, kTagBytes> tag{};
    std::memcpy(tag.data(), in + n, kTagBytes);
    if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
        EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                          static_cast<int>(aad.size())) != 1 ||
        EVP_DecryptUpdate(ctx.get(), o, &len, in, static_cast<int>(n)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1)
        return std::nullopt;
    int final_len = 0;
    if (EVP_DecryptFinal_ex(ctx.get(), o + len, &final_len) != 1) return std::nullopt;
    out.resize(static_cast<std::size_t>(len + final_len));
    return out;
}

// Every place a version's settings sit in a record document.
template <class F>
void for_each_config(json& doc, F f) {
    if (auto l = doc.find("latest"); l != doc.end() && l->contains("config")) f((*l)["config"]);
    if (auto vs = doc.find("versions"); vs != doc.end() && vs->is_array())
        for (auto& v : *vs)
            if (v.contains("config")) f(v["config"]);
}

}  // namespace

EnvCipher EnvCipher::load(const std::filesystem::path& file) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
        const std::string id = random_hex(kKeyIdBytes);
        write_keyring(file, {{id, new_key()}});
        spdlog::info("env keys: created {} (key {}); function environments are encrypted with it", file.string(), id);
    } else if (::chmod(file.c_str(), 0600) != 0) {
        spdlog::warn("env keys: chmod 0600 {} failed: {} (errno {})", file.string(), std::strerror(errno), errno);
    }
    return EnvCipher(file, read_keyring(file));
}

std::string EnvCipher::rotate(const std::filesystem::path& file) {
    std::vector<std::pair<std::string, Key>> keys;
    std::error_code ec;
    if (std::filesystem::exists(file, ec)) keys = read_keyring(file);
    const std::string id = random_hex(kKeyIdBytes);
    keys.insert(keys.begin(), {id, new_key()});
    write_keyring(file, keys);
    return id;
}

const EnvCipher::Key* EnvCipher::find(const std::string& id) const {
    for (const auto& [kid, k] : keys_)
        if (kid == id) return &k;
    return nullptr;
}

void EnvCipher::seal(json& doc) const {
    const std::string aad = associated_data(doc.at("name").get<std::string>());
    const auto& [id, key] = keys_.front();
    for_each_config(doc, [&](json& config) {
        auto env = config.find("env");
        if (env == config.end() || !env->is_object()) return;
        std::array<unsigned char, kNonceBytes> nonce{};
        if (RAND_bytes(nonce.data(), kNonceBytes) != 1) throw std::runtime_error("RAND_bytes failed");
        const std::string sealed = gcm_seal(key, nonce.data(), aad, env->dump());
        config["env"] = json{{"sealed", kSealVersion},
                             {"key", id},
                             {"nonce", hex(nonce.data(), nonce.size())},
                             {"data", base64_encode(sealed)}};
    });
}

bool EnvCipher::open(json& doc) const {
    const std::string name = doc.at("name").get<std::string>();
    const std::string aad = associated_data(name);
    bool rewrite = false;
    for_each_config(doc, [&](json& config) {
        auto env = config.find("env");
        if (env == config.end()) return;
        if (!env->contains("sealed")) {
            rewrite = true;  // plain text, from before environments were sealed
            return;
        }
        if (env->at("sealed") != kSealVersion)
            throw std::runtime_error("the environment of function " + name + " is sealed in an unknown format");
        const std::string id = env->at("key").get<std::string>();
        const Key* key = find(id);
        if (!key)
            throw std::runtime_error("the environment of function " + name + " is sealed with key " + id +
                                     ", which is not in " + file_.string());
        std::array<unsigned char, kNonceBytes> nonce{};
        const auto data = base64_decode(env->at("data").get<std::string>());
        if (!unhex(env->at("nonce").get<std::string>(), nonce.data(), nonce.size()) || !data)
            throw std::runtime_error("the sealed environment of function " + name + " is malformed");
        const auto plain = gcm_open(*key, nonce.data(), aad, *data);
        if (!plain)
            throw std::runtime_error("the sealed environment of function " + name +
                                     " does not verify: it was altered or belongs to another function");
        config["env"] = json::parse(*plain);
        if (id != current_key_id()) rewrite = true;
    });
    return rewrite;
}

void EnvCipher::drop_old_keys() const {
    write_keyring(file_, {keys_.front()});
    spdlog::info("env keys: every environment is sealed with key {}; older keys removed from {}", current_key_id(),
                 file_.string());
}

}  // namespace funcd
