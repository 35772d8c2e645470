# Plans, subscriptions, entitlements, invoices, payments and webhooks.
bh_module(NAME billing DEPENDS auth)
