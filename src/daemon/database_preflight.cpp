#include "funcd/daemon/database_preflight.hpp"

#include <sqlite3.h>

#include <stdexcept>
#include <string>

#include "funcd/registry/sqlite.hpp"

namespace funcd {

void check_database(const std::filesystem::path& db_path) {
    const std::string where = db_path.string();
    try {
        sqlite::Database db(db_path);
        // Reading the schema reads the header and the first page: a file that is not a
        // database, or is damaged there, fails here.
        sqlite::Statement schema(db, "SELECT count(*) FROM sqlite_master");
        schema.step();
        // Taking the write lock (and giving it back) shows nobody else holds it for longer
        // than the busy timeout.
        db.exec("BEGIN IMMEDIATE; ROLLBACK;");
    } catch (const std::exception& e) {
        const std::string why = e.what();
        if (why.find("locked") != std::string::npos || why.find("busy") != std::string::npos)
            throw std::runtime_error("the database " + where + " is locked by another process (" + why +
                                     "); stop whatever holds it (another funcd, an sqlite3 shell) and start again");
        throw std::runtime_error("the database " + where + " cannot be used (" + why +
                                 "); it may be damaged: restore it from a backup, or move it away to start "
                                 "with an empty one. funcd has not changed it");
    }
}

}  // namespace funcd
