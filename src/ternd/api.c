// SPDX-License-Identifier: MIT
/*
 * ternd's control API (docs/toolstack.md, "The ternd control protocol"):
 * what `tern` asks for. Commands run on the main thread with t->lock held.
 */
#include "ternd/ternd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migration/savevm.h"
#include "util/err.h"
#include "util/log.h"

#define VMM_CALL_MS 5000
#define SAVE_TIMEOUT_MS (10 * 60 * 1000)

static domain_t *find(ternd_t *t, qmp_req_t *r)
{
	const char *ref = qmp_arg_str(r, "domain");
	domain_t *d = domain_find(t, ref);

	if (!d)
		qmp_req_error(r, NULL, "unknown domain '%s'", ref);
	return d;
}

static domain_t *find_live(ternd_t *t, qmp_req_t *r)
{
	domain_t *d = find(t, r);

	if (d && (d->pid <= 0 || d->state == DOM_INCOMING)) {
		qmp_req_error(r, NULL, "domain '%s' is %s", d->name,
			      dom_state_name(d->state));
		return NULL;
	}
	return d;
}

static json_t *vifs_json(const domain_t *d)
{
	json_t *list = json_array();

	for (unsigned i = 0; list && i < d->cfg.n_vifs; i++) {
		uint8_t m[6];
		char mac[18], ifname[32];

		domain_vif_mac(d, i, m);
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0],
			 m[1], m[2], m[3], m[4], m[5]);
		snprintf(ifname, sizeof(ifname), "vif%u.%u", d->id, i);
		json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "mac", mac,
						      "bridge",
						      domain_vif_bridge(d, i),
						      "ifname", ifname));
	}
	return list;
}

static json_t *domain_json(const domain_t *d, bool details)
{
	json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:s,s:f}", "name", d->name,
			      "id", (json_int_t)d->id, "memory",
			      (json_int_t)d->cfg.memory_mib, "vcpus",
			      (json_int_t)d->cfg.vcpus, "state",
			      dom_state_name(d->state), "time",
			      domain_cpu_time(d->pid));
	char path[320];

	if (!j || !details)
		return j;
	json_object_set_new(j, "pid", json_integer(d->pid));
	snprintf(path, sizeof(path), "%s/ctl.sock", d->dir);
	json_object_set_new(j, "control", json_string(path));
	snprintf(path, sizeof(path), "%s/con.sock", d->dir);
	json_object_set_new(j, "console", json_string(path));
	json_object_set_new(j, "config", json_string(d->config));
	json_object_set_new(j, "config-path", json_string(d->config_path));
	json_object_set_new(j, "on-poweroff",
			    json_string(domcfg_action_name(d->cfg.on_poweroff)));
	json_object_set_new(j, "on-reboot",
			    json_string(domcfg_action_name(d->cfg.on_reboot)));
	json_object_set_new(j, "on-crash",
			    json_string(domcfg_action_name(d->cfg.on_crash)));
	json_object_set_new(j, "restarts", json_integer((json_int_t)d->restarts));
	json_object_set_new(j, "vifs", vifs_json(d));
	return j;
}

static json_t *cmd_query_version(void *opaque, qmp_req_t *r)
{
	return qmp_version_json("ternd");
}

static json_t *cmd_info(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	uint64_t used = domain_memory_used(t);
	json_t *allow = json_array();
	unsigned n = 0;

	for (domain_t *d = t->domains; d; d = d->next)
		n++;
	for (unsigned i = 0; allow && i < t->cfg.n_allow; i++)
		json_array_append_new(allow, json_string(t->cfg.allow_src[i]));
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:{s:b,s:s,s:I,s:o}}",
			 "version", TERN_VERSION, "host", t->host, "machine",
			 TERND_MACHINE, "isa", TERND_ISA, "memory-total",
			 (json_int_t)t->memory_total_mib, "memory-free",
			 (json_int_t)(t->memory_total_mib > used ?
				      t->memory_total_mib - used : 0),
			 "domains", (json_int_t)n, "relocation", "server",
			 t->cfg.relocation_server, "address",
			 t->cfg.relocation_address, "port",
			 (json_int_t)t->cfg.relocation_port, "hosts-allow",
			 allow);
}

static json_t *cmd_list(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	json_t *list = json_array();
	unsigned n = 0, i = 0;
	domain_t **v;

	/* By id, as xm list shows them. */
	for (domain_t *d = t->domains; d; d = d->next)
		n++;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v || !list) {
		free(v);
		json_decref(list);
		qmp_req_error(r, NULL, "out of memory");
		return NULL;
	}
	for (domain_t *d = t->domains; d; d = d->next)
		v[i++] = d;
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = a + 1; b < n; b++)
			if (v[b]->id < v[a]->id) {
				domain_t *x = v[a];

				v[a] = v[b];
				v[b] = x;
			}
	for (i = 0; i < n; i++)
		json_array_append_new(list, domain_json(v[i], false));
	free(v);
	return list;
}

static json_t *cmd_query_domain(void *opaque, qmp_req_t *r)
{
	domain_t *d = find(opaque, r);

	return d ? domain_json(d, true) : NULL;
}

static json_t *created(domain_t *d)
{
	return json_pack("{s:s,s:I}", "name", d->name, "id", (json_int_t)d->id);
}

static json_t *cmd_create(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	const char *path = qmp_arg_str(r, "path");
	char err[1024];
	domain_t *d;

	d = domain_create(t, qmp_arg_str(r, "config"), path ? path : "config",
			  qmp_arg_bool(r, "paused", false), NULL, -1, false,
			  err, sizeof(err));
	if (!d) {
		qmp_req_error(r, NULL, "%s", err);
		return NULL;
	}
	return created(d);
}

/* pause, unpause, shutdown, reboot: one tern-vmm command each. */
static json_t *vmm_command(ternd_t *t, qmp_req_t *r, const char *cmd)
{
	domain_t *d = find_live(t, r);
	char err[512];
	json_t *ret;

	if (!d)
		return NULL;
	if (d->state == DOM_MIGRATING || d->state == DOM_SAVING) {
		qmp_req_error(r, NULL, "domain '%s' is %s", d->name,
			      dom_state_name(d->state));
		return NULL;
	}
	ret = domain_call(d->dir, cmd, NULL, VMM_CALL_MS, err, sizeof(err));
	if (!ret) {
		qmp_req_error(r, NULL, "domain '%s': %s", d->name, err);
		return NULL;
	}
	json_decref(ret);
	if (!strcmp(cmd, "stop"))
		domain_set_state(t, d, DOM_PAUSED);
	else if (!strcmp(cmd, "cont"))
		domain_set_state(t, d, DOM_RUNNING);
	return json_object();
}

static json_t *cmd_pause(void *opaque, qmp_req_t *r)
{
	return vmm_command(opaque, r, "stop");
}

static json_t *cmd_unpause(void *opaque, qmp_req_t *r)
{
	return vmm_command(opaque, r, "cont");
}

static json_t *cmd_shutdown(void *opaque, qmp_req_t *r)
{
	return vmm_command(opaque, r, "system_powerdown");
}

static json_t *cmd_reboot(void *opaque, qmp_req_t *r)
{
	return vmm_command(opaque, r, "system_reset");
}

static json_t *cmd_destroy(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	domain_t *d = find(t, r);

	if (!d)
		return NULL;
	if (d->state == DOM_INCOMING) {
		qmp_req_error(r, NULL, "domain '%s' is incoming; it is removed "
			      "if the migration fails", d->name);
		return NULL;
	}
	log_info("destroying domain %s (id %u)", d->name, d->id);
	domain_destroy(t, d);
	return json_object();
}

/*
 * save: an offline migration of the VM into FILE (tern-vmm writes it, with
 * the domain config in it); the domain ends, as with xm save. The writing
 * takes a while for a big VM, so a thread follows it and the request is
 * answered when it is done; ternd serves others meanwhile.
 */
typedef struct save_job {
	ternd_t *t;
	domain_t *d;
	char ctl[320];
	char file[4096];
	job_done_t *done;
} save_job_t;

/* Runs tern-vmm's migrate file: and follows it to its end. */
static int save_run(save_job_t *j, char *err, size_t errlen)
{
	uint64_t t0 = ternd_now_ms();
	char uri[4200];
	qmp_client_t *q;
	json_t *ret;
	int rc = 0;

	q = qmp_connect(j->ctl, VMM_CALL_MS, err, errlen);
	if (!q)
		return -1;
	snprintf(uri, sizeof(uri), "file:%s", j->file);
	ret = qmp_call(q, "migrate", json_pack("{s:s,s:b}", "uri", uri, "live",
					       false), err, errlen);
	if (!ret)
		rc = -1;
	while (ret) {
		const char *s, *e;

		json_decref(ret);
		usleep(20000);
		ret = qmp_call(q, "query-migrate", NULL, err, errlen);
		if (!ret)
			break;	/* tern-vmm exits once the file is complete */
		s = json_string_value(json_object_get(ret, "status"));
		if (s && !strcmp(s, "completed"))
			break;
		if (s && (!strcmp(s, "failed") || !strcmp(s, "cancelled"))) {
			e = json_string_value(json_object_get(ret, "error-desc"));
			rc = err_set(err, errlen, "%s", e ? e : "save failed");
		} else if (ternd_now_ms() - t0 > SAVE_TIMEOUT_MS) {
			rc = err_set(err, errlen, "save did not finish in time");
		}
		if (rc)
			break;
	}
	json_decref(ret);
	qmp_close(q);
	if (!rc && access(j->file, R_OK))
		rc = err_set(err, errlen, "%s: %s", j->file, strerror(errno));
	return rc;
}

static void *save_main(void *arg)
{
	save_job_t *j = arg;
	job_done_t *done = j->done;
	char err[512];
	struct stat st;

	if (save_run(j, err, sizeof(err))) {
		snprintf(done->error, sizeof(done->error),
			 "cannot save domain '%s': %s", j->d->name, err);
	} else {
		done->ret = json_pack("{s:s,s:I}", "file", j->file, "bytes",
				      (json_int_t)(stat(j->file, &st) ? 0 :
						   st.st_size));
		log_info("domain %s (id %u) saved to %s", j->d->name, j->d->id,
			 j->file);
	}
	pthread_mutex_lock(&j->t->lock);
	done->next = j->t->done;
	j->t->done = done;
	pthread_mutex_unlock(&j->t->lock);
	ternd_wake(j->t);
	free(j);
	return NULL;
}

static json_t *cmd_save(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	const char *file = qmp_arg_str(r, "file");
	domain_t *d = find_live(t, r);
	pthread_attr_t attr;
	save_job_t *j;
	pthread_t th;

	if (!d)
		return NULL;
	if (d->state == DOM_MIGRATING || d->state == DOM_SAVING) {
		qmp_req_error(r, NULL, "domain '%s' is %s", d->name,
			      dom_state_name(d->state));
		return NULL;
	}
	if (file[0] != '/' || strlen(file) >= sizeof(j->file)) {
		qmp_req_error(r, NULL, "save file must be an absolute path: %s",
			      file);
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (j)
		j->done = calloc(1, sizeof(*j->done));
	if (!j || !j->done) {
		free(j);
		qmp_req_error(r, NULL, "out of memory");
		return NULL;
	}
	j->t = t;
	j->d = d;
	snprintf(j->ctl, sizeof(j->ctl), "%s/ctl.sock", d->dir);
	snprintf(j->file, sizeof(j->file), "%s", file);
	j->done->d = d;
	j->done->restore_state = d->state;
	qmp_defer(r, &j->done->ticket);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, save_main, j)) {
		pthread_attr_destroy(&attr);
		json_decref(j->done->ticket.id);
		free(j->done);
		free(j);
		qmp_req_error(r, NULL, "cannot start a thread");
		return NULL;
	}
	pthread_attr_destroy(&attr);
	d->refs++;
	domain_set_state(t, d, DOM_SAVING);
	return QMP_DEFERRED;
}

void api_finish_jobs(ternd_t *t)
{
	while (t->done) {
		job_done_t *done = t->done;
		domain_t *d = done->d;

		t->done = done->next;
		if (done->ret && !d->gone) {
			/* Its tern-vmm is ending anyway: once saved, it is gone. */
			domain_destroy(t, d);
		} else if (!done->ret && !d->gone && d->state == DOM_SAVING) {
			domain_set_state(t, d, done->restore_state);
		}
		qmp_answer(&t->srv, &done->ticket, done->ret, done->error);
		domain_put(d);
		free(done);
	}
}

static json_t *cmd_restore(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	const char *file = qmp_arg_str(r, "file");
	char err[1024], *config = NULL;
	domain_t *d;

	if (file[0] != '/') {
		qmp_req_error(r, NULL, "restore file must be an absolute path: %s",
			      file);
		return NULL;
	}
	if (savevm_read_domain_config(file, &config, err, sizeof(err))) {
		qmp_req_error(r, NULL, "cannot restore %s: %s", file, err);
		return NULL;
	}
	if (!config) {
		qmp_req_error(r, NULL, "cannot restore %s: the snapshot holds no "
			      "domain config (not saved by ternd)", file);
		return NULL;
	}
	d = domain_create(t, config, file, false, file, -1, false, err,
			  sizeof(err));
	free(config);
	if (!d) {
		qmp_req_error(r, NULL, "cannot restore %s: %s", file, err);
		return NULL;
	}
	return created(d);
}

static json_t *cmd_migrate(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	json_int_t port, downtime, bw;
	domain_t *d = find(t, r);
	char err[512];

	if (!d)
		return NULL;
	if (!qmp_arg_int(r, "port", 1, 65535, 8002, &port) ||
	    !qmp_arg_int(r, "downtime-ms", 1, 600000, 300, &downtime) ||
	    !qmp_arg_int(r, "bandwidth", 0, 1 << 20, 0, &bw))
		return NULL;
	if (reloc_migrate(t, d, qmp_arg_str(r, "host"), (unsigned)port,
			  qmp_arg_bool(r, "live", false), (uint64_t)downtime,
			  (uint64_t)bw, err, sizeof(err))) {
		qmp_req_error(r, NULL, "%s", err);
		return NULL;
	}
	return json_object();
}

static json_t *cmd_query_migrate(void *opaque, qmp_req_t *r)
{
	ternd_t *t = opaque;
	const char *ref = qmp_arg_str(r, "domain");
	domain_t *d = domain_find(t, ref);
	json_t *q = reloc_query(t, d && d->state != DOM_INCOMING ? d->name : ref);

	if (!q)
		qmp_req_error(r, NULL, "no migration of '%s' is known", ref);
	return q;
}

static const qmp_arg_t domain_args[] = {
	{ "domain", QMP_ARG_STRING, true },
	{ NULL, 0, false },
};

static const qmp_arg_t create_args[] = {
	{ "config", QMP_ARG_STRING, true },
	{ "path", QMP_ARG_STRING, false },
	{ "paused", QMP_ARG_BOOL, false },
	{ NULL, 0, false },
};

static const qmp_arg_t save_args[] = {
	{ "domain", QMP_ARG_STRING, true },
	{ "file", QMP_ARG_STRING, true },
	{ NULL, 0, false },
};

static const qmp_arg_t restore_args[] = {
	{ "file", QMP_ARG_STRING, true },
	{ NULL, 0, false },
};

static const qmp_arg_t migrate_args[] = {
	{ "domain", QMP_ARG_STRING, true },
	{ "host", QMP_ARG_STRING, true },
	{ "port", QMP_ARG_INT, false },
	{ "live", QMP_ARG_BOOL, false },
	{ "downtime-ms", QMP_ARG_INT, false },
	{ "bandwidth", QMP_ARG_INT, false },
	{ NULL, 0, false },
};

const qmp_cmd_t api_cmds[] = {
	QMP_CMD_CAPABILITIES,
	QMP_CMD_QUERY_COMMANDS,
	{ "query-version", cmd_query_version, NULL },
	{ "info", cmd_info, NULL },
	{ "list", cmd_list, NULL },
	{ "query-domain", cmd_query_domain, domain_args },
	{ "create", cmd_create, create_args },
	{ "pause", cmd_pause, domain_args },
	{ "unpause", cmd_unpause, domain_args },
	{ "shutdown", cmd_shutdown, domain_args },
	{ "reboot", cmd_reboot, domain_args },
	{ "destroy", cmd_destroy, domain_args },
	{ "save", cmd_save, save_args },
	{ "restore", cmd_restore, restore_args },
	{ "migrate", cmd_migrate, migrate_args },
	{ "query-migrate", cmd_query_migrate, domain_args },
};

const size_t api_ncmds = sizeof(api_cmds) / sizeof(api_cmds[0]);
