# Registers one ctest test per GoogleTest suite of a binary, found after each build by
# running it with --gtest_list_tests (as gtest_discover_tests does for single tests).
# For binaries of many quick tests: a sanitized process takes most of a second to start,
# which one test per process pays hundreds of times.
set(FUNCD_GTEST_SUITES_WRITER ${CMAKE_CURRENT_LIST_DIR}/gtest_suites_write.cmake)

function(funcd_discover_test_suites target)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "" ${ARGN})
  set(list_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_suites.cmake")
  set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_suites_include.cmake")
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -D "EXECUTABLE=$<TARGET_FILE:${target}>" -D "OUTPUT=${list_file}"
            -D "LABEL=${ARG_LABEL}" -D "TIMEOUT=${ARG_TIMEOUT}" -P ${FUNCD_GTEST_SUITES_WRITER}
    VERBATIM)
  # Before the first build there is no list: a test that says so rather than none at all.
  file(WRITE ${include_file}
    "if(EXISTS \"${list_file}\")\n"
    "  include(\"${list_file}\")\n"
    "else()\n"
    "  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include_file})
endfunction()
