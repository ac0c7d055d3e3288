// The one translation unit that compiles Asio's and Beast's implementation
// (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION), which keeps
// the rest of the build from recompiling them in every file that includes them.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
