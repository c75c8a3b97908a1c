/* Debian's libsystemd (libsystemd-dev): only the non-variadic calls, which Swift can call. */
/* recur passes CODE_FILE/CODE_LINE/CODE_FUNC itself; without this, sd_journal_sendv would be a
   macro adding this header's own location. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
