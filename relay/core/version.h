/* version.h - the relay's version, as `pdns-relay version`, /info and
 * /stats report it. */
#ifndef PDNS_VERSION_H
#define PDNS_VERSION_H

#define PDNS_RELAY_VERSION "0.1.0"

#endif
