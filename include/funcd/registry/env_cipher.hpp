#pragma once
// Function environment variables (their secrets) encrypted at rest: every version's `env`
// in a stored function record is sealed with AES-256-GCM under a key kept in its own file
// in DATA_DIR (0600), with the function's name as associated data, so a sealed env cannot
// be moved to another function's record undetected. The database alone, a copy or a
// backup of it, reveals no environment.
//
// The keyring file holds one key a line, "<id> <64 hex digits>", the first the current one.
// Rotating prepends a new key; at its next start funcd re-seals every record under it and
// drops the keys nothing is sealed with any more.
#include <array>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace funcd {

class EnvCipher {
public:
    using Key = std::array<unsigned char, 32>;

    // Reads the keyring at `file`, creating it (0600) with one new key when it does not exist.
    // Throws std::runtime_error naming the file when it cannot be read or is malformed.
    static EnvCipher load(const std::filesystem::path& file);
    // Prepends a new key to the keyring at `file` (creating the file if needed); returns its id.
    static std::string rotate(const std::filesystem::path& file);

    // Replaces every version's "env" object in a function record document with its sealed form.
    void seal(nlohmann::json& record_doc) const;
    // The reverse. An env stored in plain text (by an older funcd) is taken as it is. Returns
    // true when the document was not sealed entirely under the current key, so it should be
    // written again. Throws std::runtime_error when a sealed env cannot be opened (unknown
    // key, or the data or name was altered).
    bool open(nlohmann::json& record_doc) const;

    const std::string& current_key_id() const { return keys_.front().first; }
    // Rewrites the keyring with the current key only (once nothing is sealed with the others).
    void drop_old_keys() const;
    bool has_old_keys() const { return keys_.size() > 1; }

private:
    EnvCipher(std::filesystem::path file, std::vector<std::pair<std::string, Key>> keys)
        : file_(std::move(file)), keys_(std::move(keys)) {}
    const Key* find(const std::string& id) const;

    std::filesystem::path file_;
    std::vector<std::pair<std::string, Key>> keys_;  // current first
};

}  // namespace funcd
