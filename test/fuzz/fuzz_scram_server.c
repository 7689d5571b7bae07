/*
 * fuzz_scram_server.c: the pooler as SCRAM server (client authentication): a client-first
 * message into scram_server_first_with_nonce, then a client-final message into
 * scram_server_final, against one fixed secret. The harness knows the password, so it can
 * also sign the fuzzer's client-final itself and reach the success path.
 * Checks: success only with a proof made from the real ClientKey, the recovered ClientKey and
 * the server signature are right, a canonical message is accepted, an exchange is one-shot.
 *
 * Input: byte 0 options (bit 0: the harness appends a correct proof; bit 1: a random server
 * nonce; bit 2: the client-first length includes its NUL), client-first, NUL, client-final.
 */
#include "fuzz.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pgusher/scram.h"

#define PASSWORD "fuzz-password"
#define SERVER_NONCE "FuzzServerNonce"
#define ITERATIONS 16

static struct scram_secret secret;
static uint8_t client_key[SCRAM_KEY_LEN];

static void hmac(const uint8_t *key, const void *msg, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int n = 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), key, SCRAM_KEY_LEN, msg, len, out, &n) && n == SCRAM_KEY_LEN);
}

static void setup(void)
{
    static bool done;
    static const uint8_t salt[16] = "fuzz-salt-012345";
    uint8_t salted[SCRAM_KEY_LEN];
    if (done)
        return;
    done = true;
    FUZZ_CHECK(scram_secret_from_password(PASSWORD, salt, sizeof salt, ITERATIONS, &secret));
    FUZZ_CHECK(PKCS5_PBKDF2_HMAC(PASSWORD, strlen(PASSWORD), salt, sizeof salt, ITERATIONS,
                                 EVP_sha256(), SCRAM_KEY_LEN, salted) == 1);
    hmac(salted, "Client Key", 10, client_key);
}

/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
static char *auth_message(const struct scram_server *st, const char *without_proof)
{
    size_t n = strlen(st->client_first_bare) + strlen(st->server_first) + strlen(without_proof);
    char *a = malloc(n + 3);
    FUZZ_CHECK(a != NULL);
    sprintf(a, "%s,%s,%s", st->client_first_bare, st->server_first, without_proof);
    return a;
}

static void final_round(struct scram_server *st, uint8_t opt, const uint8_t *cf, size_t cflen)
{
    char *without_proof = fuzz_cstr(cf, cflen), *msg, *out = NULL;
    size_t len;
    char *auth = auth_message(st, without_proof);

    if (opt & 1) {
        uint8_t stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
        char b64[SCRAM_KEY_LEN * 2];
        unsigned int n = 0;
        FUZZ_CHECK(EVP_Digest(client_key, SCRAM_KEY_LEN, stored, &n, EVP_sha256(), NULL));
        hmac(stored, auth, strlen(auth), sig);
        for (int i = 0; i < SCRAM_KEY_LEN; i++)
            proof[i] = client_key[i] ^ sig[i];
        FUZZ_CHECK(scram_b64_encode(proof, sizeof proof, b64, sizeof b64) > 0);
        len = strlen(without_proof) + 3 + strlen(b64);
        msg = malloc(len + 1);
        FUZZ_CHECK(msg != NULL);
        sprintf(msg, "%s,p=%s", without_proof, b64);
    } else {
        msg = (char *)fuzz_dup(cf, cflen);
        len = cflen;
    }

    bool ok = scram_server_final(st, msg, len, &out);
    if (ok) {
        /* Only the real ClientKey gets in; the harness's view of the exchange must agree. */
        FUZZ_CHECK(st->have_client_key);
        FUZZ_CHECK(memcmp(st->client_key, client_key, SCRAM_KEY_LEN) == 0);
        char *wp = opt & 1 ? without_proof : NULL;
        if (!wp) {
            wp = fuzz_cstr((const uint8_t *)msg, len);
            *strrchr(wp, ',') = '\0';
            free(auth);
            auth = auth_message(st, wp);
        }
        uint8_t sig[SCRAM_KEY_LEN];
        char b64[SCRAM_KEY_LEN * 2];
        hmac(secret.server_key, auth, strlen(auth), sig);
        FUZZ_CHECK(scram_b64_encode(sig, sizeof sig, b64, sizeof b64) > 0);
        FUZZ_CHECK(out && out[0] == 'v' && out[1] == '=' && strcmp(out + 2, b64) == 0);
        if (wp != without_proof)
            free(wp);
        /* One exchange, one success: replaying the final message is refused. */
        char *again = NULL;
        FUZZ_CHECK(!scram_server_final(st, msg, len, &again) && again == NULL);
    } else {
        FUZZ_CHECK(out == NULL && !st->have_client_key);
        if (opt & 1) {
            /* The canonical client-final-without-proof must be accepted. */
            char canon[256];
            snprintf(canon, sizeof canon, "c=%s,r=%s", st->cbind_flag == 'y' ? "eSws" : "biws",
                     st->nonce);
            FUZZ_CHECK(strcmp(without_proof, canon) != 0);
        }
    }
    free(out);
    free(msg);
    free(auth);
    free(without_proof);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *first, *final;
    size_t first_len, final_len;
    struct scram_server st;
    char *out = NULL;
    bool ok;

    if (size < 1)
        return 0;
    setup();
    uint8_t opt = data[0];
    data++;
    size--;
    fuzz_next_part(&data, &size, 0, &first, &first_len);
    bool have_final = fuzz_next_part(&data, &size, 0, &final, &final_len);

    memset(&st, 0, sizeof st);
    st.secret = secret;
    /* With bit 2 the message handed over carries its NUL: it must be refused. */
    size_t pass_len = first_len + ((opt & 4) && have_final ? 1 : 0);
    uint8_t *msg = fuzz_dup(first, pass_len);
    if (opt & 2)
        ok = scram_server_first(&st, (const char *)msg, pass_len, &out);
    else
        ok = scram_server_first_with_nonce(&st, (const char *)msg, pass_len, SERVER_NONCE, &out);
    if (ok) {
        FUZZ_CHECK(pass_len == first_len);
        FUZZ_CHECK(out && st.server_first && st.client_first_bare &&
                   strcmp(out, st.server_first) == 0);
        FUZZ_CHECK(strncmp(out, "r=", 2) == 0 && strncmp(out + 2, st.nonce, strlen(st.nonce)) == 0);
        FUZZ_CHECK(st.cbind_flag == 'n' || st.cbind_flag == 'y');
        if (!(opt & 2)) {
            size_t nl = strlen(st.nonce), sl = strlen(SERVER_NONCE);
            FUZZ_CHECK(nl > sl && strcmp(st.nonce + nl - sl, SERVER_NONCE) == 0);
        }
        if (have_final)
            final_round(&st, opt, final, final_len);
    } else {
        FUZZ_CHECK(out == NULL && st.server_first == NULL && st.client_first_bare == NULL);
    }
    free(out);
    free(msg);
    scram_server_reset(&st);
    return 0;
}
