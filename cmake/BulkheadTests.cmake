# Test registration. Every test is found by its place in the tree:
#   platform/tests/test_*.c           unit (cmocka), platform only
#   modules/<m>/tests/test_*.c        unit (cmocka), the module's internals
#   tests/integration/test_*.c        integration, real Postgres and Redis
#   tests/{integration,e2e,boundary,fault}/*.sh   scripts against the binary
# Scripts and integration tests read the dev environment (DATABASE_URL, ...)
# that scripts/with-devenv exports; fault tests stop and start dependencies,
# so they run alone.

if(NOT CMOCKA_FOUND)
  message(FATAL_ERROR "cmocka is required for the tests (scripts/bootstrap installs it)")
endif()

set(BH_TEST_ENV
  "BH_BIN=$<TARGET_FILE:bulkhead>"
  "BH_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "BH_BUILD_DIR=${CMAKE_BINARY_DIR}"
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

set(BH_CONTRACT_LOG ${CMAKE_BINARY_DIR}/contract-log)

file(GLOB unit_platform CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/platform/tests/test_*.c)
foreach(src IN LISTS unit_platform)
  get_filename_component(name ${src} NAME_WE)
  # The platform's own tests see its internals: the unsealed objects.
  add_executable(unit_platform_${name} ${src} $<TARGET_OBJECTS:bh_platform_objs>)
  target_link_libraries(unit_platform_${name} PRIVATE bh_platform_objs PkgConfig::CMOCKA)
  target_include_directories(unit_platform_${name} PRIVATE ${CMAKE_SOURCE_DIR}/platform/src)
  add_test(NAME unit.platform.${name} COMMAND unit_platform_${name})
  set_tests_properties(unit.platform.${name} PROPERTIES LABELS unit ENVIRONMENT "${BH_TEST_ENV}")
endforeach()

foreach(m IN LISTS BH_MODULES_ORDERED)
  file(GLOB unit_mod CONFIGURE_DEPENDS ${BH_DIR_${m}}/tests/test_*.c)
  set(others "")
  foreach(o IN LISTS BH_MODULES_ORDERED)
    if(NOT o STREQUAL m)
      list(APPEND others ${CMAKE_BINARY_DIR}/fence/${o}.sealed.o)
    endif()
  endforeach()
  foreach(src IN LISTS unit_mod)
    get_filename_component(name ${src} NAME_WE)
    set(t unit_${m}_${name})
    add_executable(${t} ${src} $<TARGET_OBJECTS:bh_mod_${m}> ${others})
    add_dependencies(${t} fences)
    set_source_files_properties(${others} PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
    set(incs ${BH_DIR_${m}}/src ${BH_DIR_${m}}/include)
    foreach(d IN LISTS BH_DEPS_${m})
      list(APPEND incs ${BH_DIR_${d}}/include)
    endforeach()
    target_include_directories(${t} PRIVATE ${incs})
    target_compile_definitions(${t} PRIVATE BH_MODULE_NAME="${m}")
    target_link_libraries(${t} PRIVATE bh_platform PkgConfig::CMOCKA)
    add_test(NAME unit.${m}.${name} COMMAND ${t})
    set_tests_properties(unit.${m}.${name} PROPERTIES LABELS unit ENVIRONMENT "${BH_TEST_ENV}")
  endforeach()
endforeach()

file(GLOB integ_c CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.c)
foreach(src IN LISTS integ_c)
  get_filename_component(name ${src} NAME_WE)
  add_executable(integ_${name} ${src} ${BH_SEALED_OBJECTS})
  add_dependencies(integ_${name} fences)
  target_include_directories(integ_${name} PRIVATE ${BH_MODULE_PUBLIC_INCLUDES}
                             ${CMAKE_SOURCE_DIR}/tests/lib)
  target_link_libraries(integ_${name} PRIVATE bh_platform PkgConfig::CMOCKA)
  add_test(NAME integration.${name} COMMAND integ_${name})
  set_tests_properties(integration.${name} PROPERTIES LABELS integration SKIP_RETURN_CODE 77
                       ENVIRONMENT "${BH_TEST_ENV}")
endforeach()

# Fuzz targets: tests/fuzz/fuzz.cmake (a short bounded run of each in the
# suite; `make fuzz` runs them under libFuzzer).
include(${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz.cmake)

foreach(kind integration e2e boundary fault)
  file(GLOB scripts CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${kind}/*.sh)
  foreach(script IN LISTS scripts)
    get_filename_component(name ${script} NAME_WE)
    add_test(NAME ${kind}.${name} COMMAND bash ${script})
    set_tests_properties(${kind}.${name} PROPERTIES LABELS ${kind} SKIP_RETURN_CODE 77
                         ENVIRONMENT "${BH_TEST_ENV}")
    if(kind STREQUAL "fault")
      set_tests_properties(${kind}.${name} PROPERTIES RUN_SERIAL TRUE)
    endif()
    if(kind STREQUAL "e2e")
      # Every exchange is recorded for the contract test below.
      set_tests_properties(${kind}.${name} PROPERTIES FIXTURES_REQUIRED contract
                           ENVIRONMENT "${BH_TEST_ENV};BH_CONTRACT_LOG=${BH_CONTRACT_LOG}")
    endif()
  endforeach()
endforeach()

# The API contract: every response the e2e tests received (recorded under
# BH_CONTRACT_LOG by tests/lib/common.sh) must be what docs/openapi.yaml
# documents: path, method, status, content type, headers and body schema
# (tests/contract/validate.js, with ajv from tools/node_modules). As the
# cleanup of the `contract` fixture it runs after every e2e test that ran,
# whatever -j; contract.reset empties the log before the first one.
add_test(NAME contract.reset COMMAND ${CMAKE_COMMAND} -E rm -rf ${BH_CONTRACT_LOG})
set_tests_properties(contract.reset PROPERTIES LABELS contract FIXTURES_SETUP contract)
add_test(NAME contract.openapi
         COMMAND node ${CMAKE_SOURCE_DIR}/tests/contract/validate.js
                 ${CMAKE_SOURCE_DIR}/docs/openapi.yaml ${BH_CONTRACT_LOG})
set_tests_properties(contract.openapi PROPERTIES LABELS contract FIXTURES_CLEANUP contract
                     SKIP_RETURN_CODE 77)

# The OpenAPI description must lint clean (redocly is installed by
# `scripts/bootstrap --lint-tools` into tools/node_modules).
add_test(NAME lint.openapi
         COMMAND ${CMAKE_SOURCE_DIR}/tools/node_modules/.bin/redocly lint --format=stylish
                 docs/openapi.yaml
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(lint.openapi PROPERTIES LABELS lint)

# Unformatted code fails the suite (`make fmt` fixes it).
add_test(NAME lint.format COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-format)
set_tests_properties(lint.format PROPERTIES LABELS lint)

# ---- async backbone: the jobs probe ------------------------------------------
# A small program with a probe module whose event handler has a countable
# effect; tests/integration/jobs_*.sh, tests/fault/*outbox*.sh and bench/jobs
# drive it as $BH_BUILD_DIR/jobs_probe. Never part of the bulkhead binary.
add_executable(jobs_probe ${CMAKE_SOURCE_DIR}/tests/integration/jobs_probe.c)
target_link_libraries(jobs_probe PRIVATE bh_platform)

# Every Lua script compiles as Lua 5.1 and lints clean (luacheck, from
# lua-check, installed by scripts/bootstrap) as Redis receives it, and none
# is sent with EVAL.
add_test(NAME lint.lua COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-lua ${CMAKE_BINARY_DIR})
set_tests_properties(lint.lua PROPERTIES LABELS lint)
