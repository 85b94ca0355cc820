/* px_cancel.c — see px_cancel.h. */
#include "px_cancel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pgwire.h"
#include "px_daemon.h"
#include "px_io.h"
#include "px_log.h"

/* Open-addressing set of (pid, key); sized for max_client_conn well beyond need. */
#define CANCEL_SLOTS 65536
typedef struct {
    uint32_t pid, key;
    bool used;
} cancel_slot;

static cancel_slot slots[CANCEL_SLOTS];
static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned slot_of(uint32_t pid)
{
    return (pid * 2654435761u) % CANCEL_SLOTS;
}

void px_cancel_register(uint32_t pid, uint32_t key)
{
    pthread_mutex_lock(&cancel_lock);
    for (unsigned i = slot_of(pid), n = 0; n < CANCEL_SLOTS; i = (i + 1) % CANCEL_SLOTS, n++) {
        if (!slots[i].used) {
            slots[i] = (cancel_slot){pid, key, true};
            break;
        }
    }
    pthread_mutex_unlock(&cancel_lock);
}

void px_cancel_unregister(uint32_t pid, uint32_t key)
{
    pthread_mutex_lock(&cancel_lock);
    unsigned i = slot_of(pid);
    for (unsigned n = 0; n < CANCEL_SLOTS && slots[i].used; i = (i + 1) % CANCEL_SLOTS, n++) {
        if (slots[i].pid == pid && slots[i].key == key)
            break;
    }
    if (slots[i].used && slots[i].pid == pid && slots[i].key == key) {
        /* Backward-shift deletion keeps every probe chain intact. */
        slots[i].used = false;
        unsigned j = i;
        for (;;) {
            j = (j + 1) % CANCEL_SLOTS;
            if (!slots[j].used)
                break;
            unsigned home = slot_of(slots[j].pid);
            bool between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
            if (!between) {
                slots[i] = slots[j];
                slots[j].used = false;
                i = j;
            }
        }
    }
    pthread_mutex_unlock(&cancel_lock);
}

bool px_cancel_known(uint32_t pid, uint32_t key)
{
    bool found = false;
    pthread_mutex_lock(&cancel_lock);
    unsigned i = slot_of(pid);
    for (unsigned n = 0; n < CANCEL_SLOTS && slots[i].used; i = (i + 1) % CANCEL_SLOTS, n++) {
        if (slots[i].pid == pid && slots[i].key == key) {
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&cancel_lock);
    return found;
}

static void cancel_io_cb(px_io *io, px_io_event ev, void *arg)
{
    (void)arg;
    if (ev == PX_IO_CONNECTED) {
        if (px_io_flush(io) && px_io_out_len(io) > 0)
            return;
        if (px_io_out_len(io) == 0) {
            /* Sent: wait for the server to close (it does once it has read it). */
            px_io_read_enable(io, true);
            return;
        }
    }
    if (ev == PX_IO_READ) {
        evbuffer_drain(io->in, evbuffer_get_length(io->in));
        return;
    }
    if (ev == PX_IO_DRAINED) {
        px_io_read_enable(io, true);
        return;
    }
    if (ev == PX_IO_ERROR)
        px_warn("cancel request: %s", io->err);
    px_io_free(io);
}

bool px_cancel_forward(struct event_base *base, uint32_t pid, uint32_t key)
{
    if (!px_cancel_known(pid, key)) {
        px_warn("cancel request for unknown backend %u ignored", pid);
        return false;
    }
    px_target t;
    px_target_get(&t, NULL);
    int fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    if (connect(fd, (struct sockaddr *)&t.addr, t.addrlen) < 0 && errno != EINPROGRESS) {
        px_warn("cancel request: connect: %s", strerror(errno));
        close(fd);
        return false;
    }
    px_io *io = px_io_new(base, fd, true, cancel_io_cb, NULL);
    if (io == NULL)
        return false;
    pgw_buf b;
    pgw_buf_init(&b);
    pgw_build_cancel_request(&b, pid, key);
    evbuffer_add(io->out, b.data, b.len);
    pgw_buf_free(&b);
    px_debug("cancel request forwarded for backend %u", pid);
    return true;
}
