# The fuzz targets (tests/fuzz/fuzz_<target>.c, corpus in
# tests/fuzz/corpus/<target>/). In the suite each runs under the bounded,
# seeded driver (driver.c) over its corpus: a short, repeatable run. With
# clang and -DBH_LIBFUZZER=ON they are libFuzzer targets instead, which
# `make fuzz` builds in build/fuzz with the sanitizers and runs for a given
# time (tests/fuzz/run).
option(BH_LIBFUZZER "Build the fuzz targets for libFuzzer (clang only)" OFF)

# The platform as its own tests see it (unsealed, internals reachable) when
# the build has it, else the library.
if(TARGET bh_platform_objs)
  set(BH_FUZZ_PLATFORM_OBJECTS $<TARGET_OBJECTS:bh_platform_objs>)
  set(BH_FUZZ_PLATFORM_LIB bh_platform_objs)
else()
  set(BH_FUZZ_PLATFORM_OBJECTS "")
  set(BH_FUZZ_PLATFORM_LIB bh_platform)
endif()

# libFuzzer steers by the coverage of the code it reaches: the platform is
# instrumented too (the module files a target compiles are, as its own).
if(BH_LIBFUZZER)
  target_compile_options(${BH_FUZZ_PLATFORM_LIB} PRIVATE -fsanitize=fuzzer-no-link)
endif()

# bh_fuzz_target(NAME <target> [MODULE <m> SOURCES <files of the module's src>]
#                [PLATFORM_INTERNALS] [ROUNDS <n>])
function(bh_fuzz_target)
  cmake_parse_arguments(F "PLATFORM_INTERNALS" "NAME;MODULE;ROUNDS" "SOURCES" ${ARGN})
  set(t fuzz_${F_NAME})
  set(srcs ${CMAKE_SOURCE_DIR}/tests/fuzz/${t}.c ${BH_FUZZ_PLATFORM_OBJECTS})
  if(NOT BH_LIBFUZZER)
    list(APPEND srcs ${CMAKE_SOURCE_DIR}/tests/fuzz/driver.c)
  endif()
  set(incs "")
  if(F_MODULE)
    foreach(s IN LISTS F_SOURCES)
      list(APPEND srcs ${BH_DIR_${F_MODULE}}/src/${s})
    endforeach()
    list(APPEND incs ${BH_DIR_${F_MODULE}}/src ${BH_DIR_${F_MODULE}}/include)
    foreach(d IN LISTS BH_DEPS_${F_MODULE})
      list(APPEND incs ${BH_DIR_${d}}/include)
    endforeach()
  endif()
  if(F_PLATFORM_INTERNALS)
    list(APPEND incs ${CMAKE_SOURCE_DIR}/platform/src)
  endif()
  add_executable(${t} ${srcs})
  target_include_directories(${t} PRIVATE ${incs})
  target_link_libraries(${t} PRIVATE ${BH_FUZZ_PLATFORM_LIB})
  if(F_MODULE)
    target_compile_definitions(${t} PRIVATE BH_MODULE_NAME="${F_MODULE}")
  endif()
  if(BH_LIBFUZZER)
    target_compile_definitions(${t} PRIVATE BH_LIBFUZZER)
    target_compile_options(${t} PRIVATE -fsanitize=fuzzer)
    target_link_options(${t} PRIVATE -fsanitize=fuzzer)
  else()
    if(NOT F_ROUNDS)
      set(F_ROUNDS 20000)
    endif()
    add_test(NAME fuzz.${t} COMMAND ${t} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${F_NAME} ${F_ROUNDS})
    set_tests_properties(fuzz.${t} PROPERTIES LABELS fuzz ENVIRONMENT "${BH_TEST_ENV}")
  endif()
endfunction()

bh_fuzz_target(NAME parsers ROUNDS 200000)
bh_fuzz_target(NAME jwt MODULE auth SOURCES token.c)
bh_fuzz_target(NAME webhook MODULE billing SOURCES rules.c provider_simulator.c)
bh_fuzz_target(NAME router PLATFORM_INTERNALS)
bh_fuzz_target(NAME last_event_id)
bh_fuzz_target(NAME mime MODULE notifications SOURCES mime.c buf.c)
bh_fuzz_target(NAME templates MODULE notifications SOURCES templates.c buf.c)
