#!/bin/sh
# Delete a device, then create one with a new id, with no transaction id
# change in between. 64 KiB pool blocks, no snapshots (pool time 0).
# thin 0 (64 MiB) blocks 0-23; thin 1 (64 MiB) blocks 0-39; transaction id
# 1. Then thin 1 is deleted, thin 2 is created and gets blocks 0-29, thin 0
# gets blocks 24-27. The transaction id stays 1.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 24 1 4096 dev0
thin_new 1 131072
wr 1 0 40 1 4096 dev1
msg "set_transaction_id 0 1"
checkpoint before-delete
thin_deact 1
msg "delete 1"
thin_new 2 131072
wr 2 0 30 1 4096 dev2
wr 0 24 4 1 4096 dev0-more
checkpoint after-create
final_status
teardown
