// SPDX-License-Identifier: MIT
#include "util/mac.h"

#include <stdio.h>

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mac_parse(const char *s, uint8_t mac[6])
{
	unsigned i;

	for (i = 0; i < 6; i++) {
		int hi = hex_digit(s[0]), lo;

		if (hi < 0)
			return -1;
		lo = hex_digit(s[1]);
		if (lo >= 0) {
			mac[i] = (uint8_t)(hi << 4 | lo);
			s += 2;
		} else {
			mac[i] = (uint8_t)hi;
			s += 1;
		}
		if (i < 5 && *s++ != ':')
			return -1;
	}
	return *s ? -1 : 0;
}

void mac_format(const uint8_t mac[6], char buf[MAC_STR_LEN])
{
	snprintf(buf, MAC_STR_LEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0],
		 mac[1], mac[2], mac[3], mac[4], mac[5]);
}

bool mac_is_valid_unicast(const uint8_t mac[6])
{
	return !mac_is_multicast(mac) &&
	       (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) != 0;
}
