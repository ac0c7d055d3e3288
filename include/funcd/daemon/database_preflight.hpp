#pragma once
// Before any part opens funcd.db: can it be read and written at all? A damaged file or one
// locked by another process stops the start with a message that says which and what to
// do, instead of whichever part opens it first failing with SQLite's words, and funcd never
// rewrites or deletes a database it could not read.
#include <filesystem>

namespace funcd {

// Throws std::runtime_error with the operator's message.
void check_database(const std::filesystem::path& db_path);

}  // namespace funcd
