# Event consumers, the in-app inbox, email, preferences and the live stream.
# It learns about tasks and billing only through events, never by calling them.
bh_module(NAME notifications DEPENDS auth)
