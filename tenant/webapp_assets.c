/* webapp_assets.c — the page's static files, compiled into the binary with the assembler's
 * .incbin (paths relative to the source root, where make runs; the Makefile makes this object
 * depend on every file in tenant/web), so the installed program needs no extra files. "/" and "/upload" need
 * a session; the script and the style sheet do not (they hold nothing secret). */
#include <string.h>

#include "webapp.h"

#define ASSET(sym, file)                                                                          \
    __asm__(".section .rodata\n.balign 16\n.global " #sym "\n" #sym ":\n.incbin \"" file "\"\n"   \
            ".global " #sym "_end\n" #sym "_end:\n.byte 0\n.previous\n");                         \
    extern const char sym[], sym##_end[];

ASSET(wapp_index_html, "tenant/web/index.html")
ASSET(wapp_upload_html, "tenant/web/upload.html")
ASSET(wapp_app_js, "tenant/web/app.js")
ASSET(wapp_style_css, "tenant/web/style.css")

static void send(qhttp_req *r, const char *type, const char *start, const char *end)
{
    wapp_headers(r);
    qhttp_reply_raw(r, 200, type, start, (size_t)(end - start));
}

void wapp_h_index(qhttp_req *r, void *ctx)
{
    if (wapp_check_read(ctx, r, NULL))
        send(r, "text/html; charset=utf-8", wapp_index_html, wapp_index_html_end);
}

void wapp_h_upload_page(qhttp_req *r, void *ctx)
{
    if (wapp_check_read(ctx, r, NULL))
        send(r, "text/html; charset=utf-8", wapp_upload_html, wapp_upload_html_end);
}

void wapp_h_static(qhttp_req *r, void *ctx)
{
    (void)ctx;
    const char *f = qhttp_req_param(r, "file");
    if (strcmp(f, "app.js") == 0)
        send(r, "text/javascript; charset=utf-8", wapp_app_js, wapp_app_js_end);
    else if (strcmp(f, "style.css") == 0)
        send(r, "text/css; charset=utf-8", wapp_style_css, wapp_style_css_end);
    else {
        wapp_headers(r);
        qhttp_reply_raw(r, 404, "text/plain; charset=utf-8", "not found\n", 10);
    }
}
