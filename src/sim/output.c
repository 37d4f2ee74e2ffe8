/* output.c - simulator results as a table, JSON, CSV and an SVG plot of
 * active hosts and power over time. */
#include "sim/sim.h"

#include <jansson.h>
#include <math.h>

void sim_print_table(FILE *f, const char *policy, const sim_result *r)
{
    fprintf(f, "policy            %s\n", policy);
    fprintf(f, "hosts / VMs       %d / %d (%d VMs finished early)\n", r->nhosts, r->nvms,
            r->vms_finished);
    fprintf(f, "intervals         %d\n", r->steps);
    fprintf(f, "energy            %.2f kWh\n", r->energy_kwh);
    fprintf(f, "migrations        %ld\n", r->migrations);
    fprintf(f, "SLATAH            %.2f%%\n", r->slatah * 100);
    fprintf(f, "PDM               %.2f%%\n", r->pdm * 100);
    fprintf(f, "SLAV              %.5f%%\n", r->slav * 100);
    fprintf(f, "ESV               %.5f\n", r->esv);
    fprintf(f, "overall SLA       %.2f%%\n", r->overall_sla * 100);
    if (r->wall_s > 0)
        fprintf(f, "wall              %.3f s\n", r->wall_s);
}

void sim_print_json(FILE *f, const char *policy, const sim_result *r)
{
    json_t *o =
        json_pack("{s:s, s:i, s:i, s:i, s:f, s:I, s:f, s:f, s:f, s:f, s:f, s:i, s:f}", "policy",
                  policy, "hosts", r->nhosts, "vms", r->nvms, "intervals", r->steps, "energy_kwh",
                  r->energy_kwh, "migrations", (json_int_t)r->migrations, "slatah", r->slatah,
                  "pdm", r->pdm, "slav", r->slav, "esv", r->esv, "overall_sla", r->overall_sla,
                  "vms_finished", r->vms_finished, "wall_s", r->wall_s);
    if (o && r->nseries) {
        json_t *s = json_array();
        for (int i = 0; i < r->nseries; i++)
            json_array_append_new(s,
                                  json_pack("{s:f, s:i, s:f}", "t", r->series_t[i], "active",
                                            r->series_active[i], "power_w", r->series_power_w[i]));
        json_object_set_new(o, "series", s);
    }
    if (o) {
        json_dumpf(o, f, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        fputc('\n', f);
        json_decref(o);
    }
}

void sim_print_csv(FILE *f, const char *policy, const sim_result *r, bool header)
{
    if (header)
        fprintf(f, "policy,hosts,vms,energy_kwh,migrations,slatah,pdm,slav,esv,wall_s\n");
    fprintf(f, "%s,%d,%d,%.4f,%ld,%.8f,%.8f,%.10f,%.10f,%.4f\n", policy, r->nhosts, r->nvms,
            r->energy_kwh, r->migrations, r->slatah, r->pdm, r->slav, r->esv, r->wall_s);
}

/* Two stacked line charts sharing the time axis: active hosts and power. */
int sim_write_svg(const char *path, const char *title, const sim_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const double W = 800, Hh = 200, L = 60, T = 40, G = 50;
    double maxa = 1, maxp = 1, t0 = r->nseries ? r->series_t[0] : 0,
           t1 = r->nseries ? r->series_t[r->nseries - 1] : 1;
    if (t1 <= t0)
        t1 = t0 + 1;
    for (int i = 0; i < r->nseries; i++) {
        if (r->series_active[i] > maxa)
            maxa = r->series_active[i];
        if (r->series_power_w[i] > maxp)
            maxp = r->series_power_w[i];
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n",
            W + L + 20, T + 2 * Hh + G + 40);
    fprintf(f, "<text x=\"%.0f\" y=\"20\" font-size=\"14\">%s</text>\n", L, title);
    for (int c = 0; c < 2; c++) {
        double y0 = T + c * (Hh + G), maxv = c ? maxp : maxa;
        fprintf(f,
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                "stroke=\"#888\"/>\n",
                L, y0, W, Hh);
        fprintf(f, "<text x=\"5\" y=\"%.0f\">%s</text>\n", y0 + 12, c ? "power W" : "active hosts");
        fprintf(f, "<text x=\"5\" y=\"%.0f\">%.0f</text>\n", y0 + 28, maxv);
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                c ? "#c33" : "#36c");
        for (int i = 0; i < r->nseries; i++) {
            double v = c ? r->series_power_w[i] : r->series_active[i];
            fprintf(f, "%.1f,%.1f ", L + (r->series_t[i] - t0) / (t1 - t0) * W,
                    y0 + Hh - v / maxv * Hh);
        }
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">time: %.0f s .. %.0f s</text>\n", L,
            T + 2 * Hh + G + 20, t0, t1);
    fprintf(f, "</svg>\n");
    return fclose(f) == 0 ? 0 : -1;
}
