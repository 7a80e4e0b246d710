/* SPDX-License-Identifier: MIT */
/*
 * Ethernet MAC addresses as users write them ("52:54:00:12:34:56"), for
 * tern-vmm's --net and ternd's vif lines alike, so both accept the same.
 */
#ifndef TERN_MAC_H
#define TERN_MAC_H

#include <stdbool.h>
#include <stdint.h>

/* Length of "aa:bb:cc:dd:ee:ff" with its terminating NUL. */
#define MAC_STR_LEN 18

/* The value of hex digit c (either case), or -1. */
int hex_digit(char c);

/*
 * Parses six hex octets of 1 or 2 digits separated by ':' and nothing
 * else (ether_aton's syntax). Returns 0, or -1 when malformed (mac may
 * then be partly written).
 */
int mac_parse(const char *s, uint8_t mac[6]);

/* "aa:bb:cc:dd:ee:ff" into buf. */
void mac_format(const uint8_t mac[6], char buf[MAC_STR_LEN]);

/* The I/G bit: a group (multicast or broadcast) address. */
static inline bool mac_is_multicast(const uint8_t mac[6])
{
	return mac[0] & 1;
}

/* Unicast and not all zero: usable as a NIC's address. */
bool mac_is_valid_unicast(const uint8_t mac[6]);

#endif
