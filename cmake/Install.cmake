# Install.cmake: what `cmake --install` puts where (binary, man pages, systemd units and
# tmpfiles.d entry, example and ready-to-run configs, the Grafana dashboard, logrotate snippet), and the Debian package CPack builds from it
# (`cpack -G DEB`). Configure with -DCMAKE_INSTALL_PREFIX=/usr for a package: the units and
# the config path are written for the prefix given here.
include(GNUInstallDirs)

set(PGUSHER_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where the systemd units go (relative to the prefix, or absolute)")
set(PGUSHER_CONFIG_DIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pgusher")
set(PGUSHER_CONFIG_FILE "${PGUSHER_CONFIG_DIR}/pgusher.ini")
configure_file(${CMAKE_SOURCE_DIR}/etc/pgusher.service.in ${CMAKE_BINARY_DIR}/pgusher.service @ONLY)

install(TARGETS pgusher RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES man/pgusher.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES man/pgusher.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${CMAKE_BINARY_DIR}/pgusher.service etc/pgusher.socket
  DESTINATION ${PGUSHER_SYSTEMD_UNITDIR})
install(FILES etc/pgusher.ini etc/userlist.txt etc/grafana-pgusher.json
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# The ready-to-run config: never over an operator's (a package manager handles conffiles;
# a plain `cmake --install` must not clobber them either). file(INSTALL) adds DESTDIR itself.
foreach(f pgusher.ini userlist.txt)
  install(CODE "
    set(dst \"\$ENV{DESTDIR}${PGUSHER_CONFIG_DIR}/${f}\")
    if(EXISTS \"\${dst}\")
      message(STATUS \"Keeping: \${dst}\")
    else()
      file(INSTALL \"${CMAKE_SOURCE_DIR}/etc/deb/${f}\" DESTINATION \"${PGUSHER_CONFIG_DIR}\")
    endif()")
endforeach()
install(FILES etc/deb/pgusher.tmpfiles DESTINATION lib/tmpfiles.d RENAME pgusher.conf)
install(FILES etc/deb/pgusher.logrotate DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d
  RENAME pgusher)

# The Debian package.
set(CPACK_PACKAGE_NAME pgusher)
set(CPACK_PACKAGE_VENDOR "pgusher")
set(CPACK_PACKAGE_CONTACT "pgusher maintainers <pgusher@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "PgBouncer-compatible PostgreSQL connection pooler with health checks and load balancing")
set(CPACK_PACKAGE_DESCRIPTION
  "pgusher reads PgBouncer's pgbouncer.ini and auth_file unchanged, speaks its admin console
and pools connections in session, transaction or statement mode. A database may list several
hosts: pgusher health-checks them, sends writes to the primary and spreads reads over the
standbys. Runs as a systemd service (Type=notify, watchdog, socket activation).")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
# DESTDIR staging: the config and logrotate paths are absolute (/etc for prefix /usr).
set(CPACK_SET_DESTDIR ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql")
set(PGUSHER_DEB_CONFFILES "${PGUSHER_CONFIG_DIR}/pgusher.ini\n${PGUSHER_CONFIG_DIR}/userlist.txt\n${CMAKE_INSTALL_FULL_SYSCONFDIR}/logrotate.d/pgusher\n")
file(WRITE ${CMAKE_BINARY_DIR}/deb/conffiles "${PGUSHER_DEB_CONFFILES}")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_BINARY_DIR}/deb/conffiles
  ${CMAKE_SOURCE_DIR}/etc/deb/postinst
  ${CMAKE_SOURCE_DIR}/etc/deb/prerm
  ${CMAKE_SOURCE_DIR}/etc/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
