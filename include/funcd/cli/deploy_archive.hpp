#pragma once
// The zip `funcd deploy` makes of a directory: deterministic (the same tree gives the same
// bytes, so the daemon's code store, keyed by the zip's SHA-256, reuses it), honouring the
// directory's `.funcdignore`.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace funcd::cli {

// Glob matching for .funcdignore lines: `*` and `?` within one path segment, `[abc]`,
// `[a-z]`, `[!x]` classes, `**` across segments (`**/x`, `a/**`, `a/**/b`), `\` escapes.
bool glob_match(std::string_view pattern, std::string_view path);

// .funcdignore, in gitignore's manner: one glob per line; blank lines and `#` comments are
// skipped; a pattern without a `/` (but a trailing one) matches a name at any depth, one
// with a `/` is relative to the directory's root; a trailing `/` matches only directories;
// `!` re-includes what an earlier line left out; the last matching line decides. What is
// inside a left-out directory stays out.
class IgnoreRules {
public:
    static IgnoreRules parse(std::string_view text);
    // `.funcdignore` in `dir`, if there is one.
    static IgnoreRules load(const std::filesystem::path& dir);

    // `path` is relative to the root, segments joined by '/'.
    bool ignored(std::string_view path, bool is_dir) const;

private:
    struct Rule {
        std::string pattern;
        bool negate = false;
        bool dir_only = false;
        bool has_slash = false;
    };
    std::vector<Rule> rules_;
};

// The relative paths (sorted, '/'-separated, directories too) that go into the zip.
// `.funcdignore` itself and `.git` are always left out. Throws CliError (usage) for a tree
// that cannot be read, or an entry that is neither a file, a directory nor a symlink.
std::vector<std::string> archive_paths(const std::filesystem::path& dir);

// The zip of `dir`: entries in byte order of their paths, every time 1980-01-01 00:00:00
// UTC, owners 0, modes 0644 (0755 for directories and files their owner may execute,
// 0777 for symlinks), deflated. Throws CliError (usage) as archive_paths does.
std::string zip_directory(const std::filesystem::path& dir);

}  // namespace funcd::cli
