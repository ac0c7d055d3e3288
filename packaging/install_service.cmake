# Runs at install time (packaging/CMakeLists.txt): writes funcd.service and the environment
# file for the prefix being installed to, and installs them (DESTDIR applies as to every
# installed file).
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr")
  set(FUNCD_SYSCONFDIR /etc)
else()
  set(FUNCD_SYSCONFDIR "${prefix}/etc")
endif()
set(FUNCD_ENVIRONMENT_FILE "${FUNCD_SYSCONFDIR}/default/funcd")
set(FUNCD_FULL_BINDIR "${prefix}/${FUNCD_BINDIR}")
set(FUNCD_FULL_DOCDIR "${prefix}/${FUNCD_DOCDIR}")
set(FUNCD_FULL_RUNTIMEDIR "${prefix}/${FUNCD_RUNTIMEDIR}")
configure_file("${FUNCD_PACKAGING_DIR}/funcd.service.in" "${FUNCD_PACKAGING_OUT}/funcd.service" @ONLY)
# systemd's unit directory of the prefix: /usr/lib/systemd/system (on Debian 12's merged
# /usr the same as /lib/systemd/system), /usr/local/lib/systemd/system, ...
file(INSTALL DESTINATION "${prefix}/lib/systemd/system" TYPE FILE FILES "${FUNCD_PACKAGING_OUT}/funcd.service")
file(INSTALL DESTINATION "${FUNCD_SYSCONFDIR}/default" TYPE FILE RENAME funcd FILES "${FUNCD_PACKAGING_DIR}/funcd.default")
